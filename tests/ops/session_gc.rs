//! GC and upload sessions: expired sessions leave no in-memory state, and
//! the repository rows that only made-up session names created go with
//! them, while repositories with content stay. Real HTTP on loopback.
//!
//! Must NEVER talk to a non-loopback address.

use crate::support::*;
use soute::registry::GcPolicy;

fn repo_rows(soute: &Soute) -> i64 {
    let db = rusqlite::Connection::open(soute.data().join("soute.db")).expect("open db");
    db.query_row("SELECT count(*) FROM repo", [], |r| r.get(0))
        .expect("count")
}

#[test]
fn expired_sessions_take_their_state_and_made_up_repositories_with_them() {
    let soute = Soute::plain();
    let agent = http_agent();
    let config = b"{}".to_vec();
    let digest = sha256(&config);
    let url = soute.url(&format!("/v2/kept/app/blobs/uploads/?digest={digest}"));
    call(&agent, "POST", &url, None, &[], Some(&config)).expect_status(201);
    let manifest = image_manifest(
        "application/vnd.oci.image.manifest.v1+json",
        &Descriptor::new("application/vnd.oci.image.config.v1+json", &config),
        &[],
        None,
        None,
    );
    call(
        &agent,
        "PUT",
        &soute.url("/v2/kept/app/manifests/v1"),
        None,
        &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
        Some(&manifest),
    )
    .expect_status(201);
    for i in 0..5 {
        let r = call(
            &agent,
            "POST",
            &soute.url(&format!("/v2/made-up{i}/x/blobs/uploads/")),
            None,
            &[],
            None,
        );
        r.expect_status(202);
        let loc = soute.url(r.location());
        call(&agent, "PATCH", &loc, None, &[], Some(b"bytes")).expect_status(202);
    }
    assert_eq!(soute.registry().session_states(), 5);
    assert_eq!(repo_rows(&soute), 6);

    let policy = GcPolicy {
        upload_ttl_secs: 0,
        ..GcPolicy::default()
    };
    let report = soute.registry().gc(&policy).expect("gc");
    assert_eq!(report.uploads_expired.len(), 5);
    assert_eq!(
        soute.registry().session_states(),
        0,
        "expired sessions kept state"
    );
    assert_eq!(repo_rows(&soute), 1, "made-up repositories stayed");
    get(&agent, &soute.url("/v2/kept/app/manifests/v1"), None).expect_status(200);
    // A made-up name can be used again after its row went.
    call(
        &agent,
        "POST",
        &soute.url("/v2/made-up0/x/blobs/uploads/"),
        None,
        &[],
        None,
    )
    .expect_status(202);
}
