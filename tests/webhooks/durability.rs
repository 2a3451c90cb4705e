//! Delivery survives what goes wrong: a receiver that fails, then is down,
//! gets the events once it is back, after waits that double; a `kill -9`
//! of the real binary while a delivery is in flight loses nothing, and the
//! event sent again carries the same id. A hanging receiver never slows a
//! push.

use super::common::*;
use super::images::push_image;
use crate::support::*;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

fn ids(events: &[serde_json::Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["id"].as_str().expect("id").to_string())
        .collect()
}

#[test]
fn a_receiver_down_for_a_while_gets_the_events_once_back_after_growing_waits() {
    let soute = Soute::plain();
    let receiver = Receiver::start(Mode::Status(503));
    add_webhook(soute.data(), "ci", &receiver.url("/"), &[], Some("k"));
    let agent = http_agent();
    let image = push_image(&agent, &soute.http_base(), "lab/app", "v1", 7, &[100], None);
    // Three answers of 503: the first at once, then after ~0.5 s and ~1 s.
    let failed = wait_for("three failed attempts", ARRIVAL, || {
        let d = receiver.deliveries();
        (d.len() >= 3).then_some(d)
    });
    let gap = |i: usize| failed[i + 1].at.duration_since(failed[i].at);
    assert!(
        gap(0) >= Duration::from_millis(400),
        "first wait {:?}",
        gap(0)
    );
    assert!(
        gap(1) >= Duration::from_millis(900),
        "second wait {:?}",
        gap(1)
    );
    assert!(
        gap(1).as_secs_f64() >= gap(0).as_secs_f64() * 1.5,
        "the wait did not grow: {:?} then {:?}",
        gap(0),
        gap(1)
    );
    let first_ids = ids(&failed[0].events());
    assert_eq!(first_ids.len(), 2, "push and tag in one envelope");
    for d in &failed {
        assert_eq!(ids(&d.events()), first_ids, "a retry changed the batch");
    }
    // Then down altogether (connections refused) for a while.
    let (addr, record) = receiver.stop();
    let list = list_json(soute.data());
    assert_eq!(list[0]["pending"], 2);
    let error = list[0]["last_error"].as_str().unwrap_or("");
    assert!(error.contains("503"), "last error: {error}");
    std::thread::sleep(Duration::from_secs(2));
    let receiver = Receiver::restart(addr, Mode::Status(200), record);
    let events = wait_events(&receiver, 2);
    assert_eq!(
        ids(&events),
        first_ids,
        "the events delivered are not the ones retried"
    );
    assert_eq!(events[0]["target"]["digest"], image.digest.as_str());
    for d in receiver.deliveries() {
        check_envelope(&d, Some("k"));
    }
    wait_until("the outbox to empty", ARRIVAL, || {
        list_json(soute.data())[0]["pending"] == 0
    });
}

#[test]
fn kill_9_between_commit_and_delivery_loses_nothing_and_resends_the_same_ids() {
    let served = Served::fresh(&[]);
    let receiver = Receiver::start(Mode::Hang(Duration::from_secs(20)));
    add_webhook(served.folder(), "ci", &receiver.url("/"), &[], Some("k9"));
    let agent = http_agent();
    let base = format!("http://{}", served.addr);
    // The receiver hangs on the first delivery: the pushes are not slowed.
    let mut digests = Vec::new();
    for i in 0..3 {
        let started = Instant::now();
        let tag = format!("v{i}");
        digests.push(push_image(&agent, &base, "lab/app", &tag, 20 + i, &[100], None).digest);
        let took = started.elapsed();
        assert!(took < Duration::from_secs(3), "push {i} took {took:?}");
    }
    let in_flight = wait_for("a delivery in flight", ARRIVAL, || {
        receiver.deliveries().first().cloned()
    });
    assert_eq!(in_flight.answered, 0);
    let sent_before = ids(&in_flight.events());
    // kill -9 while it waits for the answer, then start again on the folder.
    receiver.set_mode(Mode::Status(200));
    let served = served.restart(&[]);
    let want: BTreeSet<(String, String)> = (0..3)
        .flat_map(|i| [("push", i), ("tag", i)].map(|(a, i)| (a.to_string(), format!("v{i}"))))
        .collect();
    let events = wait_for("all six events after the restart", ARRIVAL, || {
        let events = receiver.accepted_events();
        let got: BTreeSet<(String, String)> = events
            .iter()
            .map(|e| {
                let (action, _, tag, _) = summary(e);
                (action, tag)
            })
            .collect();
        (got == want).then_some(events)
    });
    let delivered: BTreeSet<String> = ids(&events).into_iter().collect();
    assert_eq!(
        delivered.len(),
        6,
        "duplicates among acknowledged events: {events:?}"
    );
    for id in &sent_before {
        assert!(
            delivered.contains(id),
            "event {id} sent before the crash came back with another id"
        );
    }
    for e in &events {
        let tag = e["target"]["tag"].as_str().expect("tag");
        let i: usize = tag[1..].parse().expect("tag number");
        assert_eq!(e["target"]["digest"], digests[i].as_str());
    }
    for d in receiver.deliveries() {
        check_envelope(&d, Some("k9"));
    }
    wait_until("the outbox to empty", ARRIVAL, || {
        list_json(served.folder())[0]["pending"] == 0
    });
}
