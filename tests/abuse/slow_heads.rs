//! Slow heads and stalled TLS handshakes do not hold workers: with 2,000 of
//! them open (8 workers), a normal client is still answered within a second.

use crate::helpers::*;
use crate::support::*;
use std::time::Duration;

const SLOW: usize = 2000;
const MAX_LATENCY: Duration = Duration::from_secs(1);

#[test]
fn slow_plain_heads_do_not_hold_workers() {
    let _one = serial();
    raise_fd_limit(2 * SLOW as u64 + 200);
    // 2,000 over 8 addresses is 250 each: lift the per-address cap, so it is
    // the readiness loop, not the cap, that keeps the workers free.
    let server = spawn(false, &["--max-connections-per-ip", "1000"]);
    let slow = open_slow_heads(server.addr, SLOW);
    let lat = measure(20, || plain_v2(server.addr, NORMAL_CLIENT));
    let open = still_open(&slow);
    eprintln!(
        "plain, {SLOW} slow heads: /v2/ max {:?}, p99 {:?}; server VmHWM {} KiB",
        lat[lat.len() - 1],
        p99(&lat),
        server.vm_hwm_kib()
    );
    assert_eq!(
        open, SLOW,
        "the slow heads must still be open while measured"
    );
    assert!(lat[lat.len() - 1] < MAX_LATENCY, "{lat:?}");
}

#[test]
fn stalled_tls_handshakes_do_not_hold_workers() {
    let _one = serial();
    raise_fd_limit(2 * SLOW as u64 + 200);
    let server = spawn(true, &["--max-connections-per-ip", "1000"]);
    let cfg = tls_client(server.ca_pem.as_deref().expect("CA"));
    let stalled = open_stalled_handshakes(server.addr, SLOW, &cfg);
    let lat = measure(20, || tls_v2(server.addr, NORMAL_CLIENT, &cfg));
    let open = still_open(&stalled);
    eprintln!(
        "TLS, {SLOW} stalled handshakes: /v2/ max {:?}, p99 {:?}; server VmHWM {} KiB",
        lat[lat.len() - 1],
        p99(&lat),
        server.vm_hwm_kib()
    );
    assert_eq!(
        open, SLOW,
        "the stalled handshakes must still be open while measured"
    );
    assert!(lat[lat.len() - 1] < MAX_LATENCY, "{lat:?}");
}
