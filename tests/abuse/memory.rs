//! The server's own peak memory (VmHWM from /proc) stays bounded with 2,000
//! TLS connections stalled after the handshake in the middle of a request
//! head plus 2,000 stalled in the handshake, all open at once.

use crate::helpers::*;
use crate::support::*;
use std::time::Duration;

const EACH: usize = 2000;
/// The bound ARCHITECTURE.md states for 4,000 slow connections.
const MAX_HWM_KIB: u64 = 64 * 1024;

#[test]
fn memory_stays_bounded_with_slow_heads_and_handshakes() {
    let _one = serial();
    raise_fd_limit(2 * EACH as u64 + 200);
    let server = spawn(true, &["--max-connections-per-ip", "1000"]);
    let before = server.vm_hwm_kib();
    let cfg = tls_client(server.ca_pem.as_deref().expect("CA"));
    let heads = open_tls_slow_heads(server.addr, EACH, &cfg);
    let stalled = open_stalled_handshakes(server.addr, EACH, &cfg);
    let lat = measure(10, || tls_v2(server.addr, NORMAL_CLIENT, &cfg));
    let hwm = server.vm_hwm_kib();
    let open_heads = still_open(heads.iter().map(|t| &t.sock));
    let open_stalled = still_open(&stalled);
    eprintln!(
        "VmHWM {before} KiB at start, {hwm} KiB with {open_heads} TLS slow heads and \
         {open_stalled} stalled handshakes; /v2/ max {:?}",
        lat[lat.len() - 1]
    );
    assert_eq!(open_stalled, EACH, "stalled handshakes closed too early");
    assert!(
        open_heads > EACH * 9 / 10,
        "only {open_heads} TLS slow heads still open"
    );
    assert!(hwm < MAX_HWM_KIB, "VmHWM {hwm} KiB");
    assert!(lat[lat.len() - 1] < Duration::from_secs(1), "{lat:?}");
}
