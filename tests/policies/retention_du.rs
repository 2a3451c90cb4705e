//! `soute du` counts what retention rules remove at the next GC as
//! reclaimable (per repository and in total), names each such tag with its
//! rule, and `soute gc` with the same grace periods then frees exactly that.

use crate::helpers::*;

const REPO: &str = "lab/app";
const NOW: [&str; 4] = ["--grace", "0", "--link-grace", "0"];

fn du(dir: &std::path::Path) -> serde_json::Value {
    let mut args = vec!["du", "--json"];
    args.extend(NOW);
    serde_json::from_str(&cli(dir, &args)).expect("du --json is JSON")
}

#[test]
fn du_counts_what_retention_removes_and_gc_then_frees_exactly_that() {
    let soute = Soute::start(|_| {});
    let dir = soute.data().to_path_buf();
    let c = Client::new(soute.addr());
    for tag in ["keep", "drop"] {
        image(tag).push(&c, REPO, tag).expect("push");
    }
    let before = du(&dir);
    assert_eq!(before["total"]["reclaimable_bytes"], 0, "{before}");
    assert_eq!(before["retention_removes"], serde_json::json!([]));

    cli(&dir, &["retention", "set", REPO, "--keep-tags", "^keep$"]);
    let after = du(&dir);
    let dropped = image("drop");
    let want = (dropped.manifest().len() + dropped.config.len() + dropped.layers[0].len()) as u64;
    assert_eq!(after["total"]["reclaimable_bytes"], want, "{after}");
    assert_eq!(after["repositories"][0]["reclaimable_bytes"], want);
    let removes = after["retention_removes"].as_array().expect("array");
    assert_eq!(removes.len(), 1, "{after}");
    assert_eq!(removes[0]["repository"], REPO);
    assert_eq!(removes[0]["tag"], "drop");
    assert_eq!(removes[0]["rule"], REPO);
    assert_eq!(removes[0]["digest"], dropped.digest().as_str());
    // Nothing changed: du only counts.
    assert_eq!(tags(&c, REPO), ["drop", "keep"]);
    let mut args = vec!["du"];
    args.extend(NOW);
    let text = cli(&dir, &args);
    let line = format!(
        "  includes lab/app:drop ({}): retention rule lab/app, removed: does not match ^keep$",
        dropped.digest()
    );
    assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");

    let mut args = vec!["gc", "--json"];
    args.extend(NOW);
    let report: serde_json::Value = serde_json::from_str(&cli(&dir, &args)).expect("gc --json");
    assert_eq!(report["freed_bytes"], want, "{report}");
    assert_eq!(tags(&c, REPO), ["keep"]);
    assert_eq!(du(&dir)["total"]["reclaimable_bytes"], 0);
}
