//! Importing a bcrypt htpasswd file at start.

use crate::support::*;
use std::fs;
use std::time::Duration;

#[test]
fn bcrypt_users_import_and_a_foreign_hash_stops_start_by_line() {
    let files = tempfile::tempdir().expect("tempdir");
    let good = files.path().join("good.htpasswd");
    let hash = bcrypt::hash("hunter2", 4).expect("bcrypt");
    // htpasswd -B writes $2y$; bcrypt writes $2b$: accept both.
    let hash_2y = format!("$2y${}", &hash[4..]);
    fs::write(
        &good,
        format!("# users\n\nhtuser:{hash}\nother@example.org:{hash_2y}\n"),
    )
    .expect("write htpasswd");
    let path = good.clone();
    let soute = Soute::start(move |cfg| cfg.htpasswd = Some(path.clone()));
    let agent = http_agent();
    let v2 = format!("{}/v2/", soute.http_base());
    get(&agent, &v2, None).expect_challenge("soute");
    get(&agent, &v2, Some(&basic("htuser", "hunter2"))).expect_status(200);
    get(&agent, &v2, Some(&basic("other@example.org", "hunter2"))).expect_status(200);
    get(&agent, &v2, Some(&basic("htuser", "hunter3"))).expect_challenge("soute");
    let data = soute.data().to_path_buf();
    soute.stop();

    // A line that is not bcrypt: start fails, naming the line, not the hash.
    let sha_hash = "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=";
    let bad = files.path().join("bad.htpasswd");
    fs::write(&bad, format!("htuser:{hash}\nlegacy:{sha_hash}\n")).expect("write");
    let mut cfg = base_config(&data);
    cfg.htpasswd = Some(bad.clone());
    let err = match soute::app::start(cfg) {
        Ok(running) => {
            running.shutdown();
            panic!("start must refuse a non-bcrypt htpasswd line");
        }
        Err(e) => e.to_string(),
    };
    assert!(err.contains("line 2"), "{err}");
    assert!(err.contains("bcrypt"), "{err}");
    assert!(!err.contains("W6ph5Mm5"), "the hash leaks: {err}");
    assert!(!err.contains(&hash[7..]), "a hash leaks: {err}");

    // The same through the binary (distribution's variable): exit status
    // and message, and no hash on stderr.
    let mut cmd = soute_bin();
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--tls", "off", "--data"])
        .arg(&data)
        .env("REGISTRY_AUTH_HTPASSWD_PATH", &bad);
    let (status, _, stderr) = Proc::spawn(cmd).finish(Duration::from_secs(20));
    assert!(!status.success(), "serve started: {stderr}");
    assert!(stderr.contains("line 2"), "{stderr}");
    assert!(!stderr.contains("W6ph5Mm5"), "the hash leaks: {stderr}");

    // The failed start left the folder usable: a good file starts again.
    let mut cfg = base_config(&data);
    cfg.htpasswd = Some(good);
    let running = soute::app::start(cfg).expect("start again");
    let v2 = format!("http://{}/v2/", running.addrs()[0]);
    get(&agent, &v2, Some(&basic("htuser", "hunter2"))).expect_status(200);
    running.shutdown();
}

/// The file is imported line by line once: a user deleted or re-passworded
/// with `soute user` stays so across restarts until the file's line changes.
#[test]
fn cli_changes_survive_restarts_until_the_file_changes() {
    let files = tempfile::tempdir().expect("tempdir");
    let file = files.path().join("users.htpasswd");
    let old = bcrypt::hash("first-pw", 4).expect("bcrypt");
    fs::write(&file, format!("bob:{old}\n")).expect("write htpasswd");
    let path = file.clone();
    let mut soute = Soute::start(move |cfg| cfg.htpasswd = Some(path.clone()));
    let agent = http_agent();
    let v2 = format!("{}/v2/", soute.http_base());
    get(&agent, &v2, Some(&basic("bob", "first-pw"))).expect_status(200);

    assert!(soute.registry().delete_user("bob").expect("delete"));
    soute.restart();
    let v2 = format!("{}/v2/", soute.http_base());
    // Another user keeps the registry closed; bob stays deleted.
    soute
        .registry()
        .set_user("carol", "carol-pw")
        .expect("carol");
    get(&agent, &v2, Some(&basic("bob", "first-pw"))).expect_challenge("soute");

    // A new line for bob in the file is imported at the next start.
    let new = bcrypt::hash("second-pw", 4).expect("bcrypt");
    fs::write(&file, format!("bob:{new}\n")).expect("rewrite htpasswd");
    soute.restart();
    let v2 = format!("{}/v2/", soute.http_base());
    get(&agent, &v2, Some(&basic("bob", "second-pw"))).expect_status(200);
    get(&agent, &v2, Some(&basic("bob", "first-pw"))).expect_challenge("soute");
    soute.stop();
}
