//! cli::args: the scanner that checks one sub-command's argv against its
//! `Spec` (every flag in the table, with a value when it takes one), and the
//! "did you mean" suggestions for unknown flags and commands.
//!
//! It must never know a command's meaning or build a `Config`: it only
//! checks names and hands out values.

use super::spec::{usage, Spec, UsageError, COMMANDS};

/// Levenshtein distance (insertions, deletions, substitutions), for "did you mean".
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The known name closest to `given`, if it is close enough to be a typo.
pub fn closest<'a>(given: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    known
        .map(|k| (edit_distance(given, k), k))
        .filter(|(d, k)| *d <= (k.len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// argv of one sub-command, checked against its `Spec`.
#[derive(Debug)]
pub struct Args {
    spec: &'static Spec,
    flags: Vec<(&'static str, Option<String>)>,
    pub positionals: Vec<String>,
    pub help: bool,
}

impl Args {
    /// Check `argv` (after the sub-command's name): every flag must be in the
    /// table, with a value when it takes one.
    pub fn scan(spec: &'static Spec, argv: &[String]) -> Result<Args, UsageError> {
        let mut args = Args {
            spec,
            flags: Vec::new(),
            positionals: Vec::new(),
            help: false,
        };
        let mut it = argv.iter();
        while let Some(arg) = it.next() {
            if arg == "-h" || arg == "--help" {
                args.help = true;
                continue;
            }
            if !arg.starts_with('-') || arg == "-" {
                args.positionals.push(arg.clone());
                continue;
            }
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (arg.as_str(), None),
            };
            let Some(flag) = spec.flags.iter().find(|f| f.name == name) else {
                return Err(unknown_flag(spec, name));
            };
            let value = match (flag.value, inline) {
                (None, Some(_)) => return Err(usage(format!("{name} takes no value"))),
                (None, None) => None,
                (Some(_), Some(v)) => Some(v),
                (Some(placeholder), None) => match it.next() {
                    Some(v) if !v.starts_with("--") => Some(v.clone()),
                    _ => return Err(usage(format!("{name} needs a value ({placeholder})"))),
                },
            };
            if !flag.repeat && args.flags.iter().any(|(n, _)| *n == flag.name) {
                return Err(usage(format!("{name} is given more than once")));
            }
            args.flags.push((flag.name, value));
        }
        Ok(args)
    }

    fn check(&self, name: &str) {
        assert!(
            self.spec.flags.iter().any(|f| f.name == name),
            "flag {name} is read but not in the table of `soute {}`",
            self.spec.name
        );
    }

    /// Whether the switch `name` was given.
    pub fn has(&self, name: &str) -> bool {
        self.check(name);
        self.flags.iter().any(|(n, _)| *n == name)
    }

    /// Every value given to `name`, in order.
    pub fn values(&self, name: &str) -> Vec<&str> {
        self.check(name);
        self.flags
            .iter()
            .filter(|(n, _)| *n == name)
            .filter_map(|(_, v)| v.as_deref())
            .collect()
    }

    pub fn value(&self, name: &str) -> Option<&str> {
        self.values(name).into_iter().next()
    }

    /// The value of `name` parsed as a `T`; a bad value names the flag.
    pub fn parsed<T: std::str::FromStr>(
        &self,
        name: &str,
        expected: &str,
    ) -> Result<Option<T>, UsageError> {
        match self.value(name) {
            None => Ok(None),
            Some(v) => v
                .parse::<T>()
                .map(Some)
                .map_err(|_| usage(format!("{name}: expected {expected}, got {v:?}"))),
        }
    }
}

fn unknown_flag(spec: &Spec, name: &str) -> UsageError {
    let hint = match closest(name, spec.flags.iter().map(|f| f.name)) {
        Some(k) => format!("; did you mean `{k}`?"),
        None => String::new(),
    };
    usage(format!(
        "unknown flag `{name}` for `soute {}`{hint} (`soute help {}` lists its flags)",
        spec.name, spec.name
    ))
}

/// An unknown sub-command, with the closest known one.
pub fn unknown_command(name: &str) -> UsageError {
    let hint = match closest(name, COMMANDS.iter().map(|s| s.name)) {
        Some(k) => format!("; did you mean `{k}`?"),
        None => String::new(),
    };
    usage(format!(
        "unknown command `{name}`{hint} (`soute help` lists the commands)"
    ))
}
