//! The outbox keeps one row per change (a push's `push` and `tag` events
//! together) and the delivery thread sends many rows per POST: a backlog of
//! pushes made while the receiver fails goes out, after a `kill -9` and a
//! restart of the real binary, in ONE accepted envelope holding every
//! event once, with the ids the failed attempts carried.

use super::common::*;
use super::images::push_image;
use crate::support::*;
use std::collections::BTreeSet;

const PUSHES: usize = 8;

#[test]
fn a_backlog_of_pushes_goes_in_one_post_with_every_id_once_across_a_kill_9() {
    let served = Served::fresh(&[]);
    let receiver = Receiver::start(Mode::Status(503));
    add_webhook(served.folder(), "ci", &receiver.url("/"), &[], None);
    let agent = http_agent();
    let base = format!("http://{}", served.addr);
    let digests: Vec<String> = (0..PUSHES)
        .map(|i| {
            push_image(
                &agent,
                &base,
                "lab/app",
                &format!("v{i}"),
                40 + i,
                &[64],
                None,
            )
            .digest
        })
        .collect();
    wait_for("a failed attempt", ARRIVAL, || {
        receiver.deliveries().first().cloned()
    });
    // Every event is counted, though a push's two share one outbox row.
    wait_until("all events pending", ARRIVAL, || {
        list_json(served.folder())[0]["pending"] == 2 * PUSHES
    });
    let served = served.restart(&[]);
    // The restarted server tries at once (503 again), then after its back-off.
    receiver.set_mode(Mode::Status(200));
    let events = wait_events(&receiver, 2 * PUSHES);
    let accepted: Vec<Delivery> = receiver
        .deliveries()
        .into_iter()
        .filter(|d| d.answered == 200)
        .collect();
    assert_eq!(
        accepted.len(),
        1,
        "{} pushes took {} accepted POSTs",
        PUSHES,
        accepted.len()
    );
    let got: BTreeSet<(String, String, String)> = events
        .iter()
        .map(|e| {
            let (action, _, tag, digest) = summary(e);
            (action, tag, digest)
        })
        .collect();
    let want: BTreeSet<(String, String, String)> = (0..PUSHES)
        .flat_map(|i| ["push", "tag"].map(|a| (a.to_string(), format!("v{i}"), digests[i].clone())))
        .collect();
    assert_eq!(got, want);
    let ids: BTreeSet<&str> = events.iter().filter_map(|e| e["id"].as_str()).collect();
    assert_eq!(ids.len(), 2 * PUSHES, "an id is missing or repeated");
    for d in receiver.deliveries() {
        check_envelope(&d, None);
        for e in d.events() {
            let id = e["id"].as_str().expect("id");
            assert!(
                ids.contains(id),
                "event {id} tried before came back with another id"
            );
        }
    }
    wait_until("the outbox to empty", ARRIVAL, || {
        let list = list_json(served.folder());
        list[0]["pending"] == 0 && list[0]["delivered"] == 2 * PUSHES
    });
}
