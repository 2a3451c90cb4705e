//! Changes made with no client request send the events a client's request
//! making the same change would: `soute tag rollback` those of a PUT of the
//! manifest by the tag (`push` and `tag`), a tag removed by a retention rule
//! at GC those of a tag DELETE, and the manifest only it kept those of a
//! manifest DELETE (actor `retention`). Both run as the real binary beside
//! a serving soute.

use super::common::*;
use super::images::push_image;
use crate::support::*;

#[test]
fn rollback_and_retention_send_the_events_of_the_same_change_by_a_client() {
    let soute = Soute::plain();
    let receiver = Receiver::start(Mode::Status(200));
    add_webhook(soute.data(), "ci", &receiver.url("/"), &[], Some("rk"));
    let agent = http_agent();
    let base = soute.http_base();
    let first = push_image(&agent, &base, "lab/app", "v1", 61, &[80], None);
    let second = push_image(&agent, &base, "lab/app", "v1", 62, &[80], None);
    wait_events(&receiver, 4);

    let data = soute.data().to_str().expect("utf-8 path").to_string();
    let run = |args: &[&str]| {
        let out = soute_bin()
            .args(args)
            .args(["--data", &data])
            .output()
            .expect("run soute");
        assert!(out.status.success(), "soute {args:?}: {out:?}");
    };
    run(&["tag", "rollback", "lab/app:v1", &first.digest]);
    let events = wait_events(&receiver, 6);
    let s = |a: &str, t: &str, d: &str| {
        (
            a.to_string(),
            "lab/app".to_string(),
            t.to_string(),
            d.to_string(),
        )
    };
    let got: Vec<_> = events[4..].iter().map(summary).collect();
    assert_eq!(
        got,
        [
            s("push", "v1", &first.digest),
            s("tag", "v1", &first.digest)
        ]
    );
    assert_eq!(events[4]["target"]["mediaType"], OCI_MANIFEST);
    assert_eq!(events[4]["target"]["size"], first.manifest.len());

    // v2 is kept by the rule, v1 (and the manifest only it kept) removed.
    push_image(&agent, &base, "lab/app", "v2", 63, &[80], None);
    wait_events(&receiver, 8);
    run(&["retention", "set", "lab/app", "--keep-tags", "^v2$"]);
    run(&["gc", "--grace", "0", "--link-grace", "0"]);
    let events = wait_events(&receiver, 10);
    let got: Vec<_> = events[8..].iter().map(summary).collect();
    assert_eq!(
        got,
        [s("delete", "v1", ""), s("delete", "", &first.digest)],
        "second image {} was untagged, not removed by the rule",
        second.digest
    );
    for e in &events[8..] {
        assert_eq!(e["actor"]["name"], "retention");
    }
    for d in receiver.deliveries() {
        check_envelope(&d, Some("rk"));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(receiver.accepted_events().len(), 10, "an extra event came");
}
