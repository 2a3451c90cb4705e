//! The bench's report: one row per metric (soute, distribution, the ratio,
//! a target and its verdict), the Markdown table printed at the end, and
//! the machine description stored in the JSON.
//! Must NEVER measure anything itself.

/// Bytes in a (decimal) megabyte, as every MB/s figure counts them.
pub const MB: f64 = 1_000_000.0;

#[derive(Clone, Copy)]
pub enum Target {
    /// soute/distribution at least this.
    RatioMin(f64),
    /// soute/distribution at most this.
    RatioMax(f64),
    /// soute's own figure at most this.
    AbsMax(f64),
    /// soute's own figure at least this.
    AbsMin(f64),
}

pub struct Row {
    pub key: String,
    pub label: String,
    pub unit: &'static str,
    pub soute: Option<f64>,
    pub dist: Option<f64>,
    pub target: Option<Target>,
}

impl Row {
    pub fn ratio(&self) -> Option<f64> {
        match (self.soute, self.dist) {
            (Some(s), Some(d)) if d != 0.0 => Some(s / d),
            _ => None,
        }
    }

    pub fn target_text(&self) -> String {
        match self.target {
            None => String::new(),
            Some(Target::RatioMin(x)) => format!("ratio >= {x}"),
            Some(Target::RatioMax(x)) => format!("ratio <= {x}"),
            Some(Target::AbsMax(x)) => format!("soute <= {x}"),
            Some(Target::AbsMin(x)) => format!("soute >= {x}"),
        }
    }

    /// Some(true) when met; the factor by which it is off otherwise.
    pub fn verdict(&self) -> Option<(bool, f64)> {
        let (v, bound, higher) = match self.target? {
            Target::RatioMin(x) => (self.ratio()?, x, true),
            Target::RatioMax(x) => (self.ratio()?, x, false),
            Target::AbsMax(x) => (self.soute?, x, false),
            Target::AbsMin(x) => (self.soute?, x, true),
        };
        let met = if higher { v >= bound } else { v <= bound };
        let off = if higher { bound / v } else { v / bound };
        Some((met, off))
    }
}

pub struct Report {
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
    /// Tables of their own (the peers'), printed after the main one.
    pub sections: Vec<String>,
    /// Their figures, for the JSON.
    pub peers: Vec<serde_json::Value>,
}

impl Report {
    pub fn new() -> Report {
        Report {
            rows: Vec::new(),
            notes: Vec::new(),
            sections: Vec::new(),
            peers: Vec::new(),
        }
    }

    /// soute's and distribution's figure of an earlier row.
    pub fn figures(&self, key: &str) -> Option<(f64, f64)> {
        self.rows
            .iter()
            .find(|r| r.key == key)
            .and_then(|r| Some((r.soute?, r.dist?)))
    }

    pub fn add(
        &mut self,
        key: &str,
        label: &str,
        unit: &'static str,
        s: Option<f64>,
        d: Option<f64>,
        t: Option<Target>,
    ) {
        let row = Row {
            key: key.into(),
            label: label.into(),
            unit,
            soute: s,
            dist: d,
            target: t,
        };
        eprintln!("  {:<44} {:>12} {:>12}", label, fmt(s), fmt(d));
        self.rows.push(row);
    }

    pub fn note(&mut self, n: impl Into<String>) {
        let n = n.into();
        eprintln!("  note: {n}");
        self.notes.push(n);
    }
}

pub fn fmt(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(x) if x.abs() >= 100.0 => format!("{x:.0}"),
        Some(x) if x.abs() >= 10.0 => format!("{x:.1}"),
        Some(x) => format!("{x:.2}"),
    }
}

pub fn machine_info() -> serde_json::Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_default();
    let mem_kb: u64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    serde_json::json!({
        "cpu": cpu, "cores": cores, "mem_gib": mem_kb as f64 / 1048576.0,
        "kernel": kernel.trim(),
    })
}

pub fn render(
    rep: &Report,
    client: &serde_json::Map<String, serde_json::Value>,
    machine: &serde_json::Map<String, serde_json::Value>,
) -> String {
    let mut out = String::new();
    out.push_str("| metric | unit | soute | distribution | soute/dist | target | verdict |\n");
    out.push_str("|---|---|---:|---:|---:|---|---|\n");
    for r in &rep.rows {
        let verdict = match r.verdict() {
            None => String::new(),
            Some((true, _)) => "met".into(),
            Some((false, off)) => format!("NOT MET ({off:.2}x off)"),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            r.label,
            r.unit,
            fmt(r.soute),
            fmt(r.dist),
            r.ratio().map_or("-".into(), |x| format!("{x:.2}")),
            r.target_text(),
            verdict
        ));
    }
    let show = |m: &serde_json::Map<String, serde_json::Value>| {
        m.iter()
            .map(|(k, v)| format!("{k}={}", fmt(v.as_f64())))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !machine.is_empty() {
        out.push_str(&format!("\nmachine ceilings: {}\n", show(machine)));
    }
    if !client.is_empty() {
        out.push_str(&format!("client ceiling (null server): {}\n", show(client)));
    }
    for n in &rep.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    for s in &rep.sections {
        out.push_str(s);
    }
    out
}

/// The three rows of one push workload: throughput, server CPU per GB, and
/// throughput against the machine's fsync'd write rate.
pub fn report_push(
    rep: &mut Report,
    key: &str,
    label: &str,
    kind: &str,
    res: &[(f64, f64)],
    fsync_rate: Option<f64>,
) {
    rep.add(
        &format!("push_{key}_mb_s"),
        label,
        "MB/s",
        Some(res[0].0),
        Some(res[1].0),
        Some(Target::RatioMin(1.8)),
    );
    rep.add(
        &format!("push_{key}_cpu_s_per_gb"),
        &format!("server CPU per GB pushed ({kind})"),
        "s/GB",
        Some(res[0].1),
        Some(res[1].1),
        Some(Target::RatioMax(0.5)),
    );
    if let Some(w) = fsync_rate {
        rep.add(
            &format!("push_{key}_vs_fsync"),
            &format!("push {kind} / fsync'd write rate"),
            "x",
            Some(res[0].0 / w),
            Some(res[1].0 / w),
            Some(Target::AbsMin(0.8)),
        );
    }
}
