//! The Prometheus text exposition format (version 0.0.4): `# HELP` and
//! `# TYPE` lines, then one line per sample, label values escaped.
//!
//! It must never read a counter or do I/O: callers hand it names, labels
//! and values; it only spells them.

use std::fmt::Write as _;

/// The content type of the format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What a family is to Prometheus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A page of metrics being written.
#[derive(Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    pub fn new() -> Exposition {
        Exposition {
            out: String::with_capacity(16 * 1024),
        }
    }

    /// Starts a family: its help and type lines. Every sample of the
    /// family follows before the next one starts.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.as_str());
    }

    /// One sample: `name{labels} value`.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(k);
                self.out.push_str("=\"");
                for c in v.chars() {
                    match c {
                        '\\' => self.out.push_str("\\\\"),
                        '"' => self.out.push_str("\\\""),
                        '\n' => self.out.push_str("\\n"),
                        c => self.out.push(c),
                    }
                }
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        push_value(&mut self.out, value);
        self.out.push('\n');
    }

    /// A family of one unlabelled sample.
    pub fn single(&mut self, name: &str, kind: Kind, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    /// The samples of one histogram series: `counts[i]` observations fell
    /// in bucket `i` (at most `bounds[i]`), `counts[bounds.len()]` above
    /// every bound; `sum` of all of them. Buckets are written cumulative.
    pub fn histogram(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        bounds: &[f64],
        counts: &[u64],
        sum: f64,
    ) {
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0u64;
        let les: Vec<String> = bounds.iter().map(|b| format_value(*b)).collect();
        for (i, le) in les.iter().enumerate() {
            cumulative += counts.get(i).copied().unwrap_or(0);
            let mut with_le = labels.to_vec();
            with_le.push(("le", le));
            self.sample(&bucket, &with_le, cumulative as f64);
        }
        cumulative += counts.get(bounds.len()).copied().unwrap_or(0);
        let mut with_le = labels.to_vec();
        with_le.push(("le", "+Inf"));
        self.sample(&bucket, &with_le, cumulative as f64);
        self.sample(&format!("{name}_sum"), labels, sum);
        self.sample(&format!("{name}_count"), labels, cumulative as f64);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

fn format_value(v: f64) -> String {
    let mut s = String::new();
    push_value(&mut s, v);
    s
}

fn push_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        let _ = write!(out, "{}", v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spelling() {
        let mut e = Exposition::new();
        e.family("a_total", Kind::Counter, "help with \\ and\nnewline");
        e.sample("a_total", &[("k", "q\"\\\n")], 3.0);
        e.sample("a_total", &[], 0.25);
        e.family("h_seconds", Kind::Histogram, "h");
        e.histogram("h_seconds", &[("x", "y")], &[0.5, 1.0], &[1, 0, 2], 4.5);
        let text = e.finish();
        let want = "# HELP a_total help with \\\\ and\\nnewline\n# TYPE a_total counter\n\
                    a_total{k=\"q\\\"\\\\\\n\"} 3\na_total 0.25\n\
                    # HELP h_seconds h\n# TYPE h_seconds histogram\n\
                    h_seconds_bucket{x=\"y\",le=\"0.5\"} 1\nh_seconds_bucket{x=\"y\",le=\"1\"} 1\n\
                    h_seconds_bucket{x=\"y\",le=\"+Inf\"} 3\nh_seconds_sum{x=\"y\"} 4.5\n\
                    h_seconds_count{x=\"y\"} 3\n";
        assert_eq!(text, want);
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(1e-3), "0.001");
    }
}
