//! Unit tests of retention's pure decision: exact survivors and reasons for
//! each option, their combinations, protections, ties and rule choice.

use super::*;

const NOW: i64 = 100 * DAY_SECS;

fn rule(last: Option<u32>, days: Option<u32>, tags: Option<&str>) -> RetentionRule {
    RetentionRule::new("**", last, days, tags.map(str::to_string)).expect("rule")
}

/// Tags `name@days-ago`, decided by `r`; the kept names and every reason.
fn run(r: &RetentionRule, tags: &[(&str, i64)], protected: &[&str]) -> (Vec<String>, Vec<String>) {
    let regex = r.keep_tags.as_deref().map(|re| compile(re).expect("regex"));
    let candidates: Vec<Candidate> = tags
        .iter()
        .map(|(name, days_ago)| Candidate {
            name,
            updated_at: NOW - days_ago * DAY_SECS,
        })
        .collect();
    let verdicts = decide(
        r,
        regex.as_ref(),
        &candidates,
        |t| protected.contains(&t).then(|| "**:v*".to_string()),
        NOW,
    );
    let kept = tags
        .iter()
        .zip(&verdicts)
        .filter(|(_, v)| v.0)
        .map(|(t, _)| t.0.to_string())
        .collect();
    let reasons = tags
        .iter()
        .zip(&verdicts)
        .map(|(t, v)| format!("{}: {}", t.0, v.1))
        .collect();
    (kept, reasons)
}

#[test]
fn survivors_table() {
    // name, days ago: a = newest ... e = oldest; v1 is old.
    let tags: &[(&str, i64)] = &[("a", 1), ("b", 2), ("c", 10), ("d", 40), ("v1", 90)];
    let cases: &[(&str, RetentionRule, &[&str], &[&str])] = &[
        ("keep-last 2", rule(Some(2), None, None), &[], &["a", "b"]),
        ("keep-last 0", rule(Some(0), None, None), &[], &[]),
        (
            "keep-last 9",
            rule(Some(9), None, None),
            &[],
            &["a", "b", "c", "d", "v1"],
        ),
        (
            "keep-days 30",
            rule(None, Some(30), None),
            &[],
            &["a", "b", "c"],
        ),
        ("keep-tags ^v", rule(None, None, Some("^v")), &[], &["v1"]),
        (
            "last 1 or days 5",
            rule(Some(1), Some(5), None),
            &[],
            &["a", "b"],
        ),
        (
            "last 1 or ^v",
            rule(Some(1), None, Some("^v")),
            &[],
            &["a", "v1"],
        ),
        (
            "all three",
            rule(Some(1), Some(15), Some("^d$")),
            &[],
            &["a", "b", "c", "d"],
        ),
        (
            "protected survives",
            rule(Some(1), None, None),
            &["v1"],
            &["a", "v1"],
        ),
    ];
    for (name, r, protected, want) in cases {
        let (kept, reasons) = run(r, tags, protected);
        assert_eq!(kept, *want, "{name}: {reasons:?}");
    }
}

#[test]
fn reasons_say_which_option_decided() {
    let tags: &[(&str, i64)] = &[("a", 1), ("old", 40), ("v2", 50), ("keep", 60)];
    let (_, reasons) = run(&rule(Some(1), Some(30), Some("^v")), tags, &["keep"]);
    assert_eq!(
        reasons,
        [
            "a: kept: among the 1 most recent".to_string(),
            "old: removed: not among the 1 most recent, older than 30 days, does not match ^v"
                .into(),
            "v2: kept: matches --keep-tags ^v".into(),
            "keep: kept: protected by rule **:v*".into(),
        ]
    );
    let (_, reasons) = run(&rule(None, Some(30), None), &[("x", 31), ("y", 29)], &[]);
    assert_eq!(
        reasons,
        [
            "x: removed: older than 30 days",
            "y: kept: pushed within the last 30 days"
        ]
    );
}

#[test]
fn ties_in_push_time_rank_by_name() {
    let tags: &[(&str, i64)] = &[("b", 3), ("a", 3), ("c", 3)];
    let (kept, _) = run(&rule(Some(2), None, None), tags, &[]);
    assert_eq!(
        kept,
        ["b", "c"],
        "same second: the greater names rank first"
    );
}

#[test]
fn rules_are_checked_and_the_most_specific_wins() {
    assert!(
        RetentionRule::new("**", None, None, None).is_err(),
        "no option"
    );
    assert!(RetentionRule::new("Bad", Some(1), None, None).is_err());
    assert!(RetentionRule::new("**", None, None, Some("(".into())).is_err());
    let long = "a".repeat(MAX_KEEP_TAGS_LEN + 1);
    assert!(RetentionRule::new("**", None, None, Some(long)).is_err());
    // Compiles within 256 characters but not within the size limit.
    assert!(RetentionRule::new("**", None, None, Some("(((a{100}){100}){100})".into())).is_err());
    let mk = |p: &str| {
        let r = RetentionRule::new(p, Some(1), None, None).expect("rule");
        let pattern = Pattern::parse(p).expect("pattern");
        (r, pattern, None)
    };
    let rules = vec![mk("**"), mk("team/**"), mk("team/app"), mk("team/*")];
    let pick = |repo: &str| rule_for(&rules, repo).map(|i| rules[i].0.pattern.clone());
    assert_eq!(pick("team/app").as_deref(), Some("team/app"));
    assert_eq!(pick("team/web").as_deref(), Some("team/*"));
    assert_eq!(pick("team/x/web").as_deref(), Some("team/**"));
    assert_eq!(pick("other").as_deref(), Some("**"));
    assert_eq!(rule_for(&rules[1..2], "other"), None);
}
