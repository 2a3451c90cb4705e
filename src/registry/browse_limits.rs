//! The bounds on what one web UI page may cost, whatever the stored content:
//! how many platforms (distinct child manifests) and layers a page shows, how
//! many child-manifest and config bytes it reads, how much config and
//! annotation text it renders, and how many heavy pages (repository, image)
//! run at once.
//!
//! It must never block (a full slot set is a 429 at once), nor read the
//! database or a blob itself: browse.rs asks it before each read.

use super::browse::{pairs, platform_of, ConfigView};
use super::sessions::{too_many, truncate_chars};
use crate::error::Result;
use serde_json::Value;
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The most platforms (distinct child manifests) a tag row or an image page
/// shows; the rest are counted ("and K more").
pub const MAX_PLATFORMS_SHOWN: usize = 64;
/// The most layers an image page lists per platform.
pub const MAX_LAYERS_SHOWN: usize = 256;
/// The most layer rows of one image page (each costs two indexed lookups).
pub const MAX_LAYER_ROWS_PER_PAGE: usize = 2_048;
/// The most child-manifest bytes one page reads and parses (each distinct
/// child once); children beyond it are counted, not read.
pub const MAX_CHILD_BYTES_PER_PAGE: u64 = 16 * 1024 * 1024;
/// The most config-blob bytes one image page reads (each distinct config once).
pub const MAX_CONFIG_BYTES_PER_PAGE: u64 = 8 * 1024 * 1024;
/// The most bytes of config and annotation text (env, labels, history,
/// entrypoint, annotations...) one page renders; the rest is cut and marked.
pub const MAX_TEXT_BYTES_PER_PAGE: usize = 256 * 1024;
/// The most tags of one digest an image page lists.
pub const MAX_TAGS_SHOWN: usize = 200;
/// The most characters of a media type, artifact type or platform shown.
pub const MAX_NAME_CHARS: usize = 255;
/// How many repository or image pages are built at once (429 beyond).
pub const MAX_CONCURRENT_HEAVY_PAGES: usize = 4;
/// Of which anonymous visitors may hold at most this many: a crowd of
/// anonymous clients gets 429 without locking signed-in users out (the
/// second attack review of session 5 did that with 8 loops).
pub const MAX_ANONYMOUS_HEAVY_PAGES: usize = 2;

/// What one page may still read and render.
#[derive(Debug)]
pub struct PageBudget {
    pub child_bytes: u64,
    pub config_bytes: u64,
    pub layer_rows: usize,
    pub text_bytes: usize,
    /// Some text was cut or dropped because `text_bytes` ran out.
    pub text_cut: bool,
}

impl Default for PageBudget {
    fn default() -> PageBudget {
        PageBudget {
            child_bytes: MAX_CHILD_BYTES_PER_PAGE,
            config_bytes: MAX_CONFIG_BYTES_PER_PAGE,
            layer_rows: MAX_LAYER_ROWS_PER_PAGE,
            text_bytes: MAX_TEXT_BYTES_PER_PAGE,
            text_cut: false,
        }
    }
}

impl PageBudget {
    /// `s`, cut (on a char boundary, marked with `…`) to the text left.
    pub fn text(&mut self, s: String) -> String {
        if s.len() <= self.text_bytes {
            self.text_bytes -= s.len();
            return s;
        }
        self.text_cut = true;
        let mut end = self.text_bytes;
        while end > 0 && !s.is_char_boundary(end) {
            end -= 1;
        }
        self.text_bytes = 0;
        if end == 0 {
            return String::new();
        }
        format!("{}…", &s[..end])
    }

    /// The items of `list` that fit, the last one possibly cut; empty
    /// items after the budget ran out are dropped.
    pub fn texts(&mut self, list: Vec<String>) -> Vec<String> {
        let mut out = Vec::new();
        for s in list {
            if self.text_bytes == 0 {
                self.text_cut = true;
                break;
            }
            out.push(self.text(s));
        }
        out
    }

    /// Like [`PageBudget::texts`] for key/value pairs.
    pub fn pairs(&mut self, list: Vec<(String, String)>) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (k, v) in list {
            if self.text_bytes == 0 {
                self.text_cut = true;
                break;
            }
            let k = self.text(k);
            let v = self.text(v);
            out.push((k, v));
        }
        out
    }

    /// Take `n` bytes of child-manifest reading, if that many are left.
    pub fn take_child(&mut self, n: u64) -> bool {
        let ok = n <= self.child_bytes;
        if ok {
            self.child_bytes -= n;
        }
        ok
    }
}

/// An index's children: each distinct digest once, in order, with the
/// platform of its first entry, and how many entries the index has.
pub(super) fn distinct_children(index: &Value) -> (Vec<(String, String)>, usize) {
    let list = index["manifests"].as_array().map_or(&[][..], Vec::as_slice);
    let mut seen: HashSet<&str> = HashSet::new();
    let mut out = Vec::new();
    for child in list {
        if let Some(d) = child.get("digest").and_then(Value::as_str) {
            if seen.insert(d) {
                let p = child
                    .get("platform")
                    .map_or("unknown".into(), |p| cut(platform_of(p)));
                out.push((d.to_string(), p));
            }
        }
    }
    (out, list.len())
}

/// `s` cut to [`MAX_NAME_CHARS`].
pub(super) fn cut(s: String) -> String {
    match truncate_chars(&s, MAX_NAME_CHARS).len() {
        n if n == s.len() => s,
        n => format!("{}…", &s[..n]),
    }
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a
            .iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect(),
        Value::String(s) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// What the image page shows of a config (whole; [`capped`] cuts it).
pub(super) fn config_view(cfg: &Value) -> ConfigView {
    let run = cfg.get("config").unwrap_or(&Value::Null);
    let text = |k: &str| run.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let history = match cfg.get("history") {
        Some(Value::Array(h)) => h
            .iter()
            .filter_map(|e| {
                e.get("created_by")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .collect(),
        _ => Vec::new(),
    };
    ConfigView {
        entrypoint: strings(run.get("Entrypoint").unwrap_or(&Value::Null)),
        cmd: strings(run.get("Cmd").unwrap_or(&Value::Null)),
        env: strings(run.get("Env").unwrap_or(&Value::Null)),
        labels: pairs(run.get("Labels").unwrap_or(&Value::Null)),
        ports: run
            .get("ExposedPorts")
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default(),
        user: text("User"),
        workdir: text("WorkingDir"),
        history,
    }
}

/// `c` cut to what is left of the page's text budget.
pub(super) fn capped(b: &mut PageBudget, c: ConfigView) -> ConfigView {
    ConfigView {
        user: b.text(c.user),
        workdir: b.text(c.workdir),
        entrypoint: b.texts(c.entrypoint),
        cmd: b.texts(c.cmd),
        ports: b.texts(c.ports),
        env: b.texts(c.env),
        labels: b.pairs(c.labels),
        history: b.texts(c.history),
    }
}

/// A counting semaphore for heavy pages that refuses instead of waiting.
#[derive(Default)]
pub(crate) struct PageSlots {
    busy: AtomicUsize,
    /// Signed-in viewers' and anonymous visitors' pages (separate pools).
    anonymous: AtomicUsize,
}

/// A held page slot, given back on drop.
pub struct PageSlot<'a>(&'a AtomicUsize);

impl PageSlots {
    pub fn try_take(&self, signed_in: bool) -> Result<PageSlot<'_>> {
        let (pool, cap) = if signed_in {
            (&self.busy, MAX_CONCURRENT_HEAVY_PAGES)
        } else {
            (&self.anonymous, MAX_ANONYMOUS_HEAVY_PAGES)
        };
        let taken = pool.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < cap).then_some(n + 1)
        });
        match taken {
            Ok(_) => Ok(PageSlot(pool)),
            Err(_) => Err(too_many(
                "too many repository and image pages are being built at once; try again",
            )),
        }
    }
}

impl Drop for PageSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl super::Registry {
    /// A slot to build one repository or image page, held until dropped:
    /// 429 when [`MAX_CONCURRENT_HEAVY_PAGES`] pages of signed-in viewers,
    /// or [`MAX_ANONYMOUS_HEAVY_PAGES`] of anonymous visitors, are being built.
    pub fn heavy_ui_page(&self, signed_in: bool) -> Result<PageSlot<'_>> {
        self.ui_page_slots.try_take(signed_in)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_cut_on_a_char_boundary_and_then_dropped() {
        let mut b = PageBudget {
            text_bytes: 5,
            ..PageBudget::default()
        };
        assert_eq!(b.text("abc".into()), "abc");
        assert_eq!(b.text("éé".into()), "é…");
        assert!(b.text_cut);
        assert_eq!(b.texts(vec!["x".into()]), Vec::<String>::new());
    }

    #[test]
    fn slots_refuse_beyond_the_cap_and_free_on_drop() {
        let slots = PageSlots::default();
        let held: Vec<_> = (0..MAX_CONCURRENT_HEAVY_PAGES)
            .map(|_| slots.try_take(true).expect("slot"))
            .collect();
        assert!(slots.try_take(true).is_err());
        drop(held);
        assert!(slots.try_take(true).is_ok());
        // Anonymous visitors fill their own pool, never the signed-in one.
        let anon: Vec<_> = (0..MAX_ANONYMOUS_HEAVY_PAGES)
            .map(|_| slots.try_take(false).expect("slot"))
            .collect();
        assert!(slots.try_take(false).is_err());
        let signed: Vec<_> = (0..MAX_CONCURRENT_HEAVY_PAGES)
            .map(|_| slots.try_take(true).expect("signed-in slot"))
            .collect();
        drop((anon, signed));
        assert!(slots.try_take(false).is_ok());
    }
}
