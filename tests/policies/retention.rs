//! Retention rules: table-driven scenarios with exact surviving tags
//! (`--keep-last`, `--keep-days` with push times set in SQLite,
//! `--keep-tags`, combinations, protected tags, the most specific rule),
//! the dry run's explanations (JSON and text), what GC then frees, the
//! online GC thread applying them, and the audit log naming the rule.

use crate::helpers::*;
use std::collections::BTreeSet;
use std::time::Duration;

const REPO: &str = "lab/app";

struct Case {
    name: &'static str,
    /// (pattern, options) of each rule, set with `soute retention set`.
    rules: &'static [(&'static str, &'static [&'static str])],
    /// `soute tag protect` rule, if any.
    protect: Option<&'static str>,
    /// (tag, image it names, pushed days ago).
    tags: &'static [(&'static str, &'static str, i64)],
    survivors: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        name: "keep-last 2",
        rules: &[("lab/**", &["--keep-last", "2"])],
        protect: None,
        tags: &[("a", "A", 1), ("b", "B", 2), ("c", "C", 3), ("d", "D", 4)],
        survivors: &["a", "b"],
    },
    Case {
        name: "keep-days 30",
        rules: &[("lab/**", &["--keep-days", "30"])],
        protect: None,
        tags: &[
            ("a", "A", 1),
            ("b", "B", 29),
            ("c", "C", 31),
            ("d", "D", 90),
        ],
        survivors: &["a", "b"],
    },
    Case {
        name: "keep-tags ^v",
        rules: &[("lab/**", &["--keep-tags", "^v"])],
        protect: None,
        tags: &[
            ("v1", "A", 100),
            ("v2", "B", 50),
            ("latest", "C", 1),
            ("dev", "D", 2),
        ],
        survivors: &["v1", "v2"],
    },
    Case {
        name: "keep-last 1 or keep-days 7",
        rules: &[("lab/**", &["--keep-last", "1", "--keep-days", "7"])],
        protect: None,
        tags: &[("a", "A", 1), ("b", "B", 5), ("c", "C", 8), ("d", "D", 9)],
        survivors: &["a", "b"],
    },
    Case {
        name: "keep-last 1 or keep-tags ^release-",
        rules: &[("lab/**", &["--keep-last", "1", "--keep-tags", "^release-"])],
        protect: None,
        tags: &[("a", "A", 1), ("release-1", "B", 60), ("b", "C", 2)],
        survivors: &["a", "release-1"],
    },
    Case {
        name: "a protected tag survives",
        rules: &[("lab/**", &["--keep-last", "1"])],
        protect: Some("lab/**:v*"),
        tags: &[("a", "A", 1), ("v1", "B", 10), ("b", "C", 5)],
        survivors: &["a", "v1"],
    },
    Case {
        name: "the most specific rule wins",
        rules: &[
            ("**", &["--keep-last", "1"]),
            ("lab/app", &["--keep-last", "3"]),
        ],
        protect: None,
        tags: &[("a", "A", 1), ("b", "B", 2), ("c", "C", 3), ("d", "D", 4)],
        survivors: &["a", "b", "c"],
    },
    Case {
        name: "a manifest another tag names stays",
        rules: &[("lab/**", &["--keep-last", "1"])],
        protect: None,
        tags: &[("new", "A", 1), ("old", "A", 5), ("older", "B", 9)],
        survivors: &["new"],
    },
];

fn run_case(case: &Case) -> Result<(), String> {
    let soute = Soute::start(|_| {});
    let dir = soute.data().to_path_buf();
    let c = Client::new(soute.addr());
    for (tag, img, _) in case.tags {
        image(img).push(&c, REPO, tag)?;
    }
    for (tag, _, days) in case.tags {
        set_pushed(&dir, REPO, tag, *days);
    }
    for (pattern, options) in case.rules {
        let mut args = vec!["retention", "set", pattern];
        args.extend_from_slice(options);
        cli(&dir, &args);
    }
    if let Some(rule) = case.protect {
        cli(&dir, &["tag", "protect", rule]);
    }
    let want: BTreeSet<String> = case.survivors.iter().map(|s| s.to_string()).collect();
    let all: BTreeSet<String> = case.tags.iter().map(|t| t.0.to_string()).collect();

    // The dry run: a verdict per tag, nothing changed.
    let report: serde_json::Value =
        serde_json::from_str(&cli(&dir, &["gc", "--dry-run", "--json"]))
            .map_err(|e| e.to_string())?;
    let verdicts = report["retention"].as_array().cloned().unwrap_or_default();
    let kept: BTreeSet<String> = verdicts
        .iter()
        .filter(|v| v["kept"] == true)
        .filter_map(|v| v["tag"].as_str().map(str::to_string))
        .collect();
    if verdicts.len() != case.tags.len() || kept != want {
        return Err(format!(
            "dry run kept {kept:?} of {} verdicts: {verdicts:?}",
            verdicts.len()
        ));
    }
    if tags(&c, REPO).into_iter().collect::<BTreeSet<_>>() != all {
        return Err("the dry run changed the tags".into());
    }

    // The real run, by the binary beside the server.
    cli(&dir, &["gc", "--grace", "0", "--link-grace", "0"]);
    let left: BTreeSet<String> = tags(&c, REPO).into_iter().collect();
    if left != want {
        return Err(format!("after gc: {left:?}, want {want:?}"));
    }
    // Images only removed tags named are gone (manifest and blobs); the rest pull.
    let kept_images: BTreeSet<&str> = case
        .tags
        .iter()
        .filter(|t| want.contains(t.0))
        .map(|t| t.1)
        .collect();
    for (tag, img, _) in case.tags {
        let i = image(img);
        let manifest = c
            .get(&format!("/v2/{REPO}/manifests/{}", i.digest()))
            .map_err(|e| e.to_string())?;
        let layer = c
            .get(&format!("/v2/{REPO}/blobs/{}", sha256(&i.layers[0])))
            .map_err(|e| e.to_string())?;
        let expect = if kept_images.contains(img) { 200 } else { 404 };
        if manifest.status != expect || layer.status != expect {
            return Err(format!(
                "{tag} ({img}): manifest {} and layer {}, want {expect}",
                manifest.status, layer.status
            ));
        }
        if expect == 200 {
            i.check_pull(&c, REPO, &i.digest())?;
        }
    }
    Ok(())
}

#[test]
fn retention_survivors_table() {
    let mut failures = Vec::new();
    for case in CASES {
        if let Err(e) = run_case(case) {
            failures.push(format!("{}: {e}", case.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn dry_run_explains_each_tag_in_text_and_the_audit_log_names_the_rule() {
    let soute = Soute::start(|_| {});
    let dir = soute.data().to_path_buf();
    let c = Client::new(soute.addr());
    for (tag, days) in [("v1", 100), ("new", 1), ("mid", 20), ("old", 40)] {
        image(tag).push(&c, REPO, tag).expect("push");
        set_pushed(&dir, REPO, tag, days);
    }
    cli(
        &dir,
        &[
            "retention",
            "set",
            "lab/**",
            "--keep-last",
            "1",
            "--keep-days",
            "30",
            "--keep-tags",
            "^v",
        ],
    );
    let text = cli(&dir, &["gc", "--dry-run"]);
    for line in [
        "  tag lab/app:mid (rule lab/**) kept: pushed within the last 30 days",
        "  tag lab/app:new (rule lab/**) kept: among the 1 most recent",
        "  tag lab/app:old (rule lab/**) removed: not among the 1 most recent, older than 30 days, does not match ^v",
        "  tag lab/app:v1 (rule lab/**) kept: matches --keep-tags ^v",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in:\n{text}");
    }
    let old = image("old");
    assert!(
        text.contains(&format!(
            "would delete manifest lab/app@{} (its tags were removed by retention)",
            old.digest()
        )),
        "{text}"
    );
    let listed = cli(&dir, &["retention", "list"]);
    let words: Vec<Vec<&str>> = listed
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        words,
        [
            vec!["PATTERN", "KEEP"],
            vec![
                "lab/**",
                "--keep-last",
                "1",
                "--keep-days",
                "30",
                "--keep-tags",
                "^v"
            ]
        ]
    );
    // The online endpoint applies the rule too.
    let report = Client::new(soute.addr()).gc("grace=0&link_grace=0");
    assert_eq!(
        report["retention"].as_array().map(Vec::len),
        Some(4),
        "{report}"
    );
    assert_eq!(tags(&c, REPO), ["mid", "new", "v1"]);
    let audit: serde_json::Value =
        serde_json::from_str(&cli(&dir, &["audit", "--json"])).expect("audit json");
    let removed: Vec<&serde_json::Value> = audit
        .as_array()
        .expect("array")
        .iter()
        .filter(|e| e["actor"] == "retention")
        .collect();
    assert_eq!(removed.len(), 1, "{audit}");
    assert_eq!(removed[0]["action"], "delete");
    assert_eq!(removed[0]["repository"], REPO);
    let detail = removed[0]["detail"].as_str().unwrap_or_default();
    assert_eq!(
        detail,
        format!(
            "tag old ({}) by rule lab/**: removed: not among the 1 most recent, older than 30 days, does not match ^v",
            old.digest()
        )
    );
    // Deleting the rule stops it: nothing more goes.
    cli(&dir, &["retention", "del", "lab/**"]);
    let report = Client::new(soute.addr()).gc("grace=0&link_grace=0");
    assert_eq!(report["retention"].as_array().map(Vec::len), Some(0));
    assert_eq!(tags(&c, REPO), ["mid", "new", "v1"]);
}

#[test]
fn the_online_gc_thread_applies_retention() {
    let soute = Soute::start(|cfg| {
        cfg.gc_interval = Some(Duration::from_secs(1));
        cfg.gc_first_run = Duration::from_secs(1);
        cfg.gc_policy.grace_secs = 0;
        cfg.gc_policy.link_grace_secs = 0;
    });
    let dir = soute.data().to_path_buf();
    let c = Client::new(soute.addr());
    for (tag, days) in [("a", 1), ("b", 2), ("c", 3)] {
        image(tag).push(&c, REPO, tag).expect("push");
        set_pushed(&dir, REPO, tag, days);
    }
    cli(&dir, &["retention", "set", "lab/**", "--keep-last", "2"]);
    wait_until(
        "the GC thread removes tag c",
        Duration::from_secs(30),
        || tags(&c, REPO) == ["a", "b"],
    );
    let c_layer = sha256(&image("c").layers[0]);
    wait_until(
        "the GC thread frees c's layer",
        Duration::from_secs(30),
        || {
            c.get(&format!("/v2/{REPO}/blobs/{c_layer}"))
                .is_ok_and(|r| r.status == 404)
        },
    );
}

#[test]
fn bad_rules_are_usage_errors_and_change_nothing() {
    let soute = Soute::start(|_| {});
    let dir = soute.data().to_path_buf();
    for (args, words) in [
        (&["retention", "set", "lab/**"][..], "needs --keep-last N"),
        (
            &["retention", "set", "Lab", "--keep-last", "1"][..],
            "invalid pattern",
        ),
        (
            &["retention", "set", "**", "--keep-tags", "("][..],
            "--keep-tags",
        ),
        (
            &["retention", "set", "**", "--keep-last", "-1"][..],
            "--keep-last",
        ),
        (
            &["retention", "list", "--keep-last", "1"][..],
            "goes with `soute retention set`",
        ),
    ] {
        let (ok, out, err) = try_cli(&dir, args);
        assert!(!ok, "{args:?} succeeded: {out}");
        assert!(err.contains(words), "{args:?}: {err}");
    }
    let long = "a".repeat(300);
    let (ok, _, err) = try_cli(&dir, &["retention", "set", "**", "--keep-tags", &long]);
    assert!(!ok && err.contains("longer than 256"), "{err}");
    assert_eq!(cli(&dir, &["retention", "list", "--json"]).trim(), "[]");
    let (ok, _, err) = try_cli(&dir, &["retention", "del", "lab/**"]);
    assert!(!ok && err.contains("no retention rule for lab/**"), "{err}");
}

#[test]
fn an_index_removed_by_retention_takes_the_children_nothing_else_keeps() {
    let soute = Soute::start(|_| {});
    let dir = soute.data().to_path_buf();
    let c = Client::new(soute.addr());
    let (a, b, new) = (image("A"), image("B"), image("C"));
    a.push(&c, REPO, "a").expect("push a");
    b.push(&c, REPO, &b.digest()).expect("push B by digest");
    let idx = index(&[&a.manifest(), &b.manifest()]);
    let r = c.manifest(REPO, "old", &idx).expect("put index");
    r.expect_status(201);
    new.push(&c, REPO, "new").expect("push new");
    for (tag, days) in [("new", 1), ("a", 2), ("old", 10)] {
        set_pushed(&dir, REPO, tag, days);
    }
    cli(&dir, &["retention", "set", "lab/app", "--keep-last", "2"]);
    cli(&dir, &["gc", "--grace", "0", "--link-grace", "0"]);
    assert_eq!(tags(&c, REPO), ["a", "new"]);
    let status = |digest: &str| {
        c.get(&format!("/v2/{REPO}/manifests/{digest}"))
            .expect("get")
            .status
    };
    assert_eq!(status(&sha256(&idx)), 404, "the index went with its tag");
    assert_eq!(status(&b.digest()), 404, "its child only it kept went too");
    assert_eq!(status(&a.digest()), 200, "the child tag a names stays");
    a.check_pull(&c, REPO, "a").expect("a pulls whole");
    let b_layer = sha256(&b.layers[0]);
    let r = c.get(&format!("/v2/{REPO}/blobs/{b_layer}")).expect("get");
    assert_eq!(r.status, 404, "B's layer was freed");
}
