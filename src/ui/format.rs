//! How the UI writes sizes and times: human units with the exact number in
//! `title=`, relative times with the absolute UTC time in `title=`, short
//! digests with the full one in `title=`.
//!
//! It must never produce markup from unescaped text (maud escapes every
//! interpolated string).

use maud::{html, Markup};

/// `1.2 MiB`, exact bytes on hover.
pub fn size(n: u64) -> Markup {
    let exact = format!("{n} bytes");
    html! { span.size title=(exact) { (crate::storage::space::format_size(n)) } }
}

/// `3 min ago`, the RFC 3339 time on hover.
pub fn when(at: i64, now: i64) -> Markup {
    let ago = now.saturating_sub(at);
    let text = match ago {
        i64::MIN..=9 => "just now".to_string(),
        10..=59 => format!("{ago} s ago"),
        60..=3599 => format!("{} min ago", ago / 60),
        3600..=86_399 => format!("{} h ago", ago / 3600),
        86_400..=5_183_999 => format!("{} days ago", ago / 86_400),
        _ => format!("{} months ago", ago / 2_592_000),
    };
    let exact = crate::cli::format_rfc3339(at);
    html! { time datetime=(exact) title=(exact) { (text) } }
}

/// `sha256:0123456789ab`, the whole digest on hover.
pub fn digest(d: &str) -> Markup {
    let short: String = match d.split_once(':') {
        Some((alg, hex)) => format!("{alg}:{}", hex.chars().take(12).collect::<String>()),
        None => d.chars().take(19).collect(),
    };
    html! { code.digest title=(d) { (short) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_times_and_digests_keep_the_exact_value_on_hover() {
        assert_eq!(
            size(1_572_864).into_string(),
            r#"<span class="size" title="1572864 bytes">1.5 MiB</span>"#
        );
        let t = when(0, 7200).into_string();
        assert!(
            t.contains("2 h ago") && t.contains("1970-01-01T00:00:00Z"),
            "{t}"
        );
        let d = digest(&format!("sha256:{}", "a".repeat(64))).into_string();
        assert!(d.contains(">sha256:aaaaaaaaaaaa<"), "{d}");
        assert!(digest("<x>").into_string().contains("&lt;x&gt;"), "escaped");
    }
}
