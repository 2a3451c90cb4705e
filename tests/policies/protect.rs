//! Protected tags through the HTTP API, as an administrator (who does not
//! bypass them): moving a covered tag, deleting it, deleting the manifest it
//! names are 403 DENIED naming the rule; re-putting the same digest, new
//! tags and uncovered tags are fine; `soute tag unprotect` lifts the rule.

use crate::helpers::*;

const REPO: &str = "lab/app";

/// An administrator's requests (Basic credentials on each).
struct Admin {
    base: String,
    agent: ureq::Agent,
    auth: String,
}

impl Admin {
    fn call(&self, method: &str, path: &str, ctype: Option<&str>, body: Option<&[u8]>) -> Resp {
        let headers: Vec<(&str, &str)> = ctype.map(|t| ("Content-Type", t)).into_iter().collect();
        call(
            &self.agent,
            method,
            &format!("{}{path}", self.base),
            Some(&self.auth),
            &headers,
            body,
        )
    }

    fn push(&self, img: &Image, reference: &str) -> Resp {
        for b in img.blobs() {
            let d = sha256(b);
            self.call(
                "POST",
                &format!("/v2/{REPO}/blobs/uploads/?digest={d}"),
                None,
                Some(b),
            )
            .expect_status(201);
        }
        self.call(
            "PUT",
            &format!("/v2/{REPO}/manifests/{reference}"),
            Some(OCI_MANIFEST),
            Some(&img.manifest()),
        )
    }

    fn digest_of(&self, tag: &str) -> Option<String> {
        let r = self.call("GET", &format!("/v2/{REPO}/manifests/{tag}"), None, None);
        (r.status == 200).then(|| sha256(&r.body))
    }
}

#[test]
fn protected_tags_refuse_moves_and_deletes_even_for_an_admin() {
    let soute = Soute::start(|_| {});
    let dir = soute.data().to_path_buf();
    user_cmd(&dir, &["add", "root", "--admin"], Some("secret-pw"));
    let admin = Admin {
        base: soute.http_base(),
        agent: http_agent(),
        auth: basic("root", "secret-pw"),
    };
    let out = cli(&dir, &["tag", "protect", "**:v*"]);
    assert!(out.contains("tags **:v* are protected"), "{out}");
    let (a, b) = (image("A"), image("B"));
    admin.push(&a, "v1").expect_status(201);
    admin.push(&a, "v1").expect_status(201); // the same digest again: fine
    admin.push(&a, "latest").expect_status(201);

    let lift = "(an administrator lifts it with `soute tag unprotect '**:v*'`)";
    let r = admin.push(&b, "v1");
    r.expect_error(403, &["DENIED"]);
    assert_eq!(
        message(&r),
        format!(
            "tag v1 of lab/app is protected by rule **:v*: moving it from {} to {} is refused {lift}",
            a.digest(),
            b.digest()
        )
    );
    assert_eq!(admin.digest_of("v1"), Some(a.digest()), "v1 did not move");
    let by_digest = format!("/v2/{REPO}/manifests/{}", b.digest());
    admin.call("GET", &by_digest, None, None).expect_status(404); // nothing half-stored
                                                                  // `?tag=` on a digest PUT is a move too.
    let r = admin.call(
        "PUT",
        &format!("{by_digest}?tag=v1"),
        Some(OCI_MANIFEST),
        Some(&b.manifest()),
    );
    r.expect_error(403, &["DENIED"]);

    let r = admin.call("DELETE", &format!("/v2/{REPO}/manifests/v1"), None, None);
    r.expect_error(403, &["DENIED"]);
    assert_eq!(
        message(&r),
        format!("tag v1 of lab/app is protected by rule **:v*: deleting it is refused {lift}")
    );
    let r = admin.call(
        "DELETE",
        &format!("/v2/{REPO}/manifests/{}", a.digest()),
        None,
        None,
    );
    r.expect_error(403, &["DENIED"]);
    assert_eq!(
        message(&r),
        format!(
            "tag v1 of lab/app is protected by rule **:v*: deleting manifest {}, which it names, is refused {lift}",
            a.digest()
        )
    );
    assert_eq!(admin.digest_of("v1"), Some(a.digest()));

    // Not covered: latest moves and goes; a new covered tag may be created.
    admin.push(&b, "latest").expect_status(201);
    admin.push(&b, "v2").expect_status(201);
    admin
        .call(
            "DELETE",
            &format!("/v2/{REPO}/manifests/latest"),
            None,
            None,
        )
        .expect_status(202);
    // A missing covered tag is still 404, not 403.
    admin
        .call("DELETE", &format!("/v2/{REPO}/manifests/v9"), None, None)
        .expect_error(404, &["MANIFEST_UNKNOWN"]);

    let listed: serde_json::Value =
        serde_json::from_str(&cli(&dir, &["tag", "protected", "--json"])).expect("json");
    assert_eq!(
        listed,
        serde_json::json!([{"pattern": "**", "tag_glob": "v*"}])
    );
    assert_eq!(cli(&dir, &["tag", "protected"]).trim(), "**:v*");

    // Lifted explicitly: the same requests now succeed.
    cli(&dir, &["tag", "unprotect", "**:v*"]);
    admin.push(&b, "v1").expect_status(201);
    assert_eq!(admin.digest_of("v1"), Some(b.digest()));
    admin
        .call("DELETE", &format!("/v2/{REPO}/manifests/v1"), None, None)
        .expect_status(202);
    let (ok, _, err) = try_cli(&dir, &["tag", "unprotect", "**:v*"]);
    assert!(!ok && err.contains("no protection **:v*"), "{err}");

    // The operator's changes are in the audit log.
    let audit = cli(&dir, &["audit"]);
    assert!(audit.contains("tag protect **:v*"), "{audit}");
    assert!(audit.contains("tag unprotect **:v*"), "{audit}");
}

#[test]
fn a_rule_covers_only_its_repositories_and_bad_rules_are_refused() {
    let soute = Soute::start(|_| {});
    let dir = soute.data().to_path_buf();
    let c = Client::new(soute.addr());
    cli(&dir, &["tag", "protect", "lab/*:release-*"]);
    let (a, b) = (image("A"), image("B"));
    a.push(&c, "lab/app", "release-1").expect("push");
    a.push(&c, "other/app", "release-1").expect("push");
    let err = b.push(&c, "lab/app", "release-1").expect_err("covered");
    assert!(err.starts_with("manifest put: 403"), "{err}");
    b.push(&c, "other/app", "release-1")
        .expect("not covered: other/app");
    b.push(&c, "lab/app", "release")
        .expect("not covered: release");
    for bad in ["nocolon", "**:", "Lab:v*", "**:v/x"] {
        let (ok, _, err) = try_cli(&dir, &["tag", "protect", bad]);
        assert!(!ok, "{bad} accepted");
        assert!(!err.is_empty(), "{bad}: no message");
    }
    assert_eq!(cli(&dir, &["tag", "protected"]).trim(), "lab/*:release-*");
}

/// A protected tag is more than its own digest: deleting a child manifest of
/// a protected index, or unlinking a layer of a protected image from the
/// repository, would leave the tag in place but its image unpullable. Both
/// are refused, naming the rule and the tagged image; the same deletes of an
/// unprotected image still work.
#[test]
fn what_a_protected_tag_contains_cannot_be_deleted_either() {
    let soute = Soute::start(|_| {});
    let dir = soute.data().to_path_buf();
    let c = Client::new(soute.addr());
    let child = image("child");
    child
        .push(&c, REPO, &child.digest())
        .expect("child by digest");
    let idx = index(&[&child.manifest()]);
    c.manifest(REPO, "v3", &idx)
        .expect("put index")
        .expect_status(201);
    let loose = image("loose");
    loose.push(&c, REPO, "latest").expect("unprotected image");
    cli(&dir, &["tag", "protect", "**:v*"]);
    let idx_digest = sha256(&idx);

    let r = c
        .delete(&format!("/v2/{REPO}/manifests/{}", child.digest()))
        .expect("delete child");
    r.expect_error(403, &["DENIED"]);
    assert_eq!(
        message(&r),
        format!(
            "tag v3 of lab/app is protected by rule **:v*: deleting manifest {}, which its \
             image {idx_digest} contains, is refused (an administrator lifts it with `soute \
             tag unprotect '**:v*'`)",
            child.digest()
        )
    );
    let layer = sha256(&child.layers[0]);
    let r = c
        .delete(&format!("/v2/{REPO}/blobs/{layer}"))
        .expect("delete layer");
    r.expect_error(403, &["DENIED"]);
    assert!(
        message(&r).contains(&format!(
            "deleting blob {layer}, which its image {idx_digest} contains"
        )),
        "{}",
        message(&r)
    );
    child
        .check_pull(&c, REPO, &child.digest())
        .expect("the protected image still pulls");

    // Not protected: its layer and its manifest go.
    let loose_layer = sha256(&loose.layers[0]);
    c.delete(&format!("/v2/{REPO}/blobs/{loose_layer}"))
        .expect("delete")
        .expect_status(202);
    c.delete(&format!("/v2/{REPO}/manifests/{}", loose.digest()))
        .expect("delete")
        .expect_status(202);
}
