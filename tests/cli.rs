//! The `soute` binary as a new user meets it: help, typos, bad values,
//! commands on a folder that does not exist, a port in use, check-config,
//! backup to a relative folder, and file modes under umask 000.
//!
//! Every test spawns the real binary (`CARGO_BIN_EXE_soute`), waits for it
//! with a deadline, and works in its own temporary folder. Servers listen on
//! 127.0.0.1 only and are killed by the test. It uses the shared support
//! library (digests, raw HTTP); its own `Server` starts `serve` under
//! `umask 000` in a chosen working folder, which the library's `serve` does not.

#[path = "support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{raw_exchange, sha256};

const BIN: &str = env!("CARGO_BIN_EXE_soute");
const DEADLINE: Duration = Duration::from_secs(60);

/// The binary with a clean environment (no REGISTRY_* from the caller), in `cwd`.
fn soute(cwd: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args).current_dir(cwd);
    for (k, _) in std::env::vars() {
        if k.starts_with("REGISTRY_") {
            cmd.env_remove(k);
        }
    }
    cmd.env_remove("RUST_LOG");
    cmd
}

/// Run to completion within the deadline, with `stdin` as its input.
fn run_with(mut cmd: Command, stdin: &[u8]) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn soute");
    if let Some(mut input) = child.stdin.take() {
        let _ = input.write_all(stdin);
    }
    let (tx, rx) = mpsc::channel();
    let pid = child.id();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(DEADLINE) {
        Ok(out) => out.expect("wait for soute"),
        Err(_) => {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
            panic!("soute did not finish within {DEADLINE:?}");
        }
    }
}

fn run(cwd: &Path, args: &[&str]) -> Output {
    run_with(soute(cwd, args), b"")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The CLI never shows an OCI error code to a person at a terminal.
fn assert_no_oci_code(stderr: &str) {
    for code in [
        "UNKNOWN",
        "NAME_INVALID",
        "UNSUPPORTED",
        "DENIED",
        "TAG_INVALID",
    ] {
        assert!(!stderr.contains(code), "OCI code {code} in: {stderr}");
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .mode()
        & 0o7777
}

/// A `soute serve` started through `sh -c 'umask 000; exec soute serve ...'`.
struct Server {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    fn start(cwd: &Path, args: &[&str]) -> Server {
        let mut script = format!("umask 000; exec {BIN} serve --listen 127.0.0.1:0");
        for a in args {
            script.push_str(&format!(" '{a}'"));
        }
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(&script).current_dir(cwd);
        for (k, _) in std::env::vars() {
            if k.starts_with("REGISTRY_") {
                cmd.env_remove(k);
            }
        }
        cmd.env_remove("RUST_LOG");
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn soute serve");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().expect("stderr");
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .expect("stderr lock")
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + DEADLINE;
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.split("://").nth(1) {
                        break rest.trim().parse::<SocketAddr>().expect("listen address");
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "soute serve did not say where it listens: {}",
                        stderr.lock().expect("lock")
                    );
                }
            }
        };
        assert!(addr.ip().is_loopback());
        Server {
            child,
            addr,
            stderr,
        }
    }

    fn log(&self) -> String {
        self.stderr.lock().expect("stderr lock").clone()
    }

    /// The log once it holds `needle` (or as it is after the deadline).
    fn log_with(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            if log.contains(needle) || Instant::now() > deadline {
                return log;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.log()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One plain-HTTP request on its own connection: (status, whole answer as text).
fn http(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    let r = raw_exchange(addr, &req);
    (r.status, format!("{} {}", r.status_line, text(&r.body)))
}

/// Operands a command needs before its flags parse (see the table's usage).
fn operands(cmd: &str) -> &'static [&'static str] {
    match cmd {
        "user" => &["list"],
        "group" => &["list"],
        "access" => &["list"],
        "token" => &["list"],
        "backup" => &["dest"],
        "du" => &["lab/app"],
        _ => &[],
    }
}

#[test]
fn help_of_every_command_lists_every_flag_it_accepts() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let general = run(tmp.path(), &["help"]);
    assert!(general.status.success());
    let general = text(&general.stdout);
    for spec in soute::cli::COMMANDS {
        assert!(
            general.contains(spec.name),
            "general help lacks {}",
            spec.name
        );
        for form in [
            vec!["help", spec.name],
            vec![spec.name, "--help"],
            vec![spec.name, "-h"],
        ] {
            let out = run(tmp.path(), &form);
            assert!(out.status.success(), "{form:?}: {}", text(&out.stderr));
            let help = text(&out.stdout);
            assert!(
                help.starts_with(&format!("soute {}:", spec.name)),
                "{form:?} printed: {help}"
            );
            for flag in spec.flags {
                assert!(help.contains(flag.name), "{form:?} lacks {}", flag.name);
            }
        }
        // Every listed flag is one the parser accepts (a value may be refused,
        // the flag never is).
        for flag in spec.flags {
            let mut argv: Vec<&str> = vec![spec.name];
            argv.extend(operands(spec.name));
            argv.push(flag.name);
            if flag.value.is_some() {
                argv.push("1");
            }
            let parsed = soute::cli::parse(argv.iter().map(Into::into).collect(), &|_| None);
            if let Err(e) = parsed {
                assert!(!e.0.contains("unknown flag"), "{argv:?}: {e}");
            }
        }
    }
    // The README's Commands block shows every command and flag too.
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let block = readme
        .split("## Commands")
        .nth(1)
        .and_then(|r| r.split("\n## ").next())
        .expect("README has a Commands section");
    for spec in soute::cli::COMMANDS {
        assert!(
            block.contains(&format!("soute {}", spec.name)),
            "README lacks {}",
            spec.name
        );
        if spec.name != "check-config" {
            for flag in spec.flags {
                assert!(
                    block.contains(flag.name),
                    "README lacks {} {}",
                    spec.name,
                    flag.name
                );
            }
        }
    }
    // `--workers` (accepted before, but not shown) is listed now.
    let serve = text(&run(tmp.path(), &["serve", "--help"]).stdout);
    assert!(serve.contains("--workers N"), "{serve}");
    assert!(
        std::fs::read_dir(tmp.path()).expect("ls").next().is_none(),
        "help created files"
    );
}

#[test]
fn an_unknown_flag_names_itself_and_suggests_the_closest() {
    let tmp = tempfile::tempdir().expect("tempdir");
    for (args, given, meant) in [
        (
            &["serve", "--hostnme", "r.lan"][..],
            "--hostnme",
            "--hostname",
        ),
        (&["gc", "--dry-rn"][..], "--dry-rn", "--dry-run"),
        (
            &["check-config", "--listn", ":1"][..],
            "--listn",
            "--listen",
        ),
    ] {
        let out = run(tmp.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = text(&out.stderr);
        assert!(err.contains(&format!("`{given}`")), "{err}");
        assert!(err.contains(&format!("did you mean `{meant}`?")), "{err}");
        assert_no_oci_code(&err);
    }
    let out = run(tmp.path(), &["serv"]);
    assert!(text(&out.stderr).contains("did you mean `serve`?"));
    assert!(!tmp.path().join("soute-data").exists());
}

#[test]
fn a_bad_value_names_its_flag_or_variable() {
    let tmp = tempfile::tempdir().expect("tempdir");
    for (args, flag) in [
        (&["serve", "--workers", "abc"][..], "--workers"),
        (&["gc", "--grace", "-1"][..], "--grace"),
        (&["serve", "--tls", "bogus"][..], "--tls"),
        (&["serve", "--log-level", "loud"][..], "--log-level"),
        (&["serve", "--listen", "nonsense:::"][..], "--listen"),
        (&["du", "lab/app", "--tag", "bad tag"][..], "--tag"),
        (&["serve", "--data"][..], "--data"),
    ] {
        let out = run(tmp.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = text(&out.stderr);
        assert!(
            err.starts_with(&format!("soute: {flag}")),
            "{args:?}: {err}"
        );
        assert_no_oci_code(&err);
    }
    let mut cmd = soute(tmp.path(), &["check-config"]);
    cmd.env("REGISTRY_LOG_LEVEL", "loud");
    let out = run_with(cmd, b"");
    let err = text(&out.stderr);
    assert!(err.contains("REGISTRY_LOG_LEVEL"), "{err}");
    assert_no_oci_code(&err);
    assert!(!tmp.path().join("soute-data").exists());
}

#[test]
fn commands_on_a_missing_folder_create_nothing_and_say_where_they_looked() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cwd = tmp.path().canonicalize().expect("canonical");
    let commands: [&[&str]; 6] = [
        &["user", "add", "bob"],
        &["user", "list"],
        &["gc"],
        &["du"],
        &["verify"],
        &["backup", "some-backup"],
    ];
    for args in commands {
        // Three ways to name the folder: the default, --data, the environment.
        let mut with_flag: Vec<&str> = args.to_vec();
        with_flag.extend(["--data", "missing"]);
        let mut by_env = soute(&cwd, args);
        by_env.env("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", "from-env");
        for (cmd, folder) in [
            (soute(&cwd, args), cwd.join("soute-data")),
            (soute(&cwd, &with_flag), cwd.join("missing")),
            (by_env, cwd.join("from-env")),
        ] {
            let out = run_with(cmd, b"secret\n");
            assert!(!out.status.success(), "{args:?} succeeded");
            let err = text(&out.stderr);
            assert!(
                err.contains(&folder.display().to_string()),
                "{args:?}: no absolute path {} in: {err}",
                folder.display()
            );
            assert!(
                err.contains("--data DIR")
                    && err.contains("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY"),
                "{err}"
            );
            assert_no_oci_code(&err);
            assert!(!folder.exists(), "{args:?} created {}", folder.display());
        }
    }
    let left: Vec<_> = std::fs::read_dir(&cwd).expect("ls").collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn serve_with_its_port_in_use_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let out = run(
        tmp.path(),
        &["serve", "--data", "d", "--listen", &addr, "--tls", "auto"],
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains(&addr) && err.contains("in use"), "{err}");
    assert_no_oci_code(&err);
    assert!(
        !tmp.path().join("d").exists(),
        "serve created the data folder"
    );
    drop(taken);
}

#[test]
fn check_config_lists_the_certificate_names() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = run(tmp.path(), &["check-config", "--hostname", "registry.test"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let cfg = text(&out.stdout);
    let line = cfg
        .lines()
        .find(|l| l.starts_with("certificate for:"))
        .unwrap_or_else(|| panic!("no certificate line in {cfg}"));
    for name in ["registry.test", "localhost", "127.0.0.1", "::1"] {
        assert!(line.contains(name), "{name} missing: {line}");
    }
    assert!(!cfg.contains("machine defaults"), "{cfg}");
    assert!(!tmp.path().join("soute-data").exists());
}

#[test]
fn user_add_says_where_and_backup_takes_a_relative_dest() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cwd = tmp.path().canonicalize().expect("canonical");
    Server::start(&cwd, &["--data", "reg", "--tls", "off"]).stop();
    let out = run_with(
        soute(&cwd, &["user", "add", "alice", "--data", "reg"]),
        b"s3cret\n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.contains(&cwd.join("reg").display().to_string()),
        "{said}"
    );

    let out = run(&cwd, &["backup", "copy", "--data", "reg"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&cwd.join("copy").display().to_string()));
    assert!(cwd.join("copy/soute.db").is_file());
    let out = run(&cwd, &["user", "list", "--data", "copy"]);
    let listed = text(&out.stdout);
    let names: Vec<&str> = listed
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(names, ["alice"], "{listed}");
    // `user add` may start the registry in an empty folder the operator made;
    // `user list` there finds none and leaves the folder empty.
    std::fs::create_dir(cwd.join("made")).expect("mkdir");
    let out = run(&cwd, &["user", "list", "--data", "made"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains(&cwd.join("made").display().to_string()));
    assert!(std::fs::read_dir(cwd.join("made"))
        .expect("ls")
        .next()
        .is_none());
    let out = run_with(
        soute(&cwd, &["user", "add", "bob", "--data", "made"]),
        b"pw\n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&cwd.join("made").display().to_string()));
    let help = text(&run(&cwd, &["help", "backup"]).stdout);
    assert!(help.contains("relative"), "{help}");
}

#[test]
fn files_are_private_whatever_the_umask() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cwd = tmp.path().canonicalize().expect("canonical");
    let data = cwd.join("d");
    // First start with soute's own CA (makes tls/), then plain HTTP to push.
    Server::start(&cwd, &["--data", "d", "--tls", "auto"]).stop();
    let server = Server::start(&cwd, &["--data", "d", "--tls", "off"]);
    let blob = b"private bytes";
    let digest = sha256(blob);
    let (status, resp) = http(
        server.addr,
        "POST",
        &format!("/v2/lab/app/blobs/uploads/?digest={digest}"),
        blob,
    );
    assert_eq!(status, 201, "{resp}");
    let (status, resp) = http(server.addr, "POST", "/v2/lab/app/blobs/uploads/", b"");
    assert_eq!(status, 202, "{resp}");
    let hex = &digest["sha256:".len()..];
    let blob_path = data.join(format!("blobs/sha256/{}/{hex}", &hex[..2]));
    let uploads: Vec<PathBuf> = std::fs::read_dir(data.join("uploads"))
        .expect("uploads")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(uploads.len(), 1, "one unfinished upload");

    let expected: Vec<(PathBuf, u32)> = vec![
        (data.clone(), 0o700),
        (data.join("soute.db"), 0o600),
        (data.join("soute.db-wal"), 0o600),
        (data.join("soute.db-shm"), 0o600),
        (data.join("lock"), 0o600),
        (data.join("blobs"), 0o700),
        (data.join("blobs/sha256"), 0o700),
        (blob_path.parent().expect("shard").to_path_buf(), 0o700),
        (blob_path.clone(), 0o600),
        (data.join("uploads"), 0o700),
        (uploads[0].clone(), 0o600),
        (data.join("tls"), 0o700),
        (data.join("tls/ca.key"), 0o600),
        (data.join("tls/server.key"), 0o600),
        (data.join("tls/ca.crt"), 0o644),
        (data.join("tls/server.crt"), 0o644),
    ];
    for (path, want) in &expected {
        assert_eq!(mode(path), *want, "{}", path.display());
    }
    // A backup (run under umask 000 too) is as private as its source.
    let out = run_with(
        {
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(format!("umask 000; exec {BIN} backup b --data d"))
                .current_dir(&cwd);
            c
        },
        b"",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    for (path, want) in [
        (cwd.join("b"), 0o700),
        (cwd.join("b/soute.db"), 0o600),
        (cwd.join("b/SHA256SUMS"), 0o600),
        (cwd.join("b/blobs"), 0o700),
        (
            cwd.join(format!("b/blobs/sha256/{}/{hex}", &hex[..2])),
            0o600,
        ),
        (cwd.join("b/tls/ca.key"), 0o600),
    ] {
        assert_eq!(mode(&path), want, "{}", path.display());
    }
    drop(server.stop());

    // Someone loosens the database, a key and the folder: `serve` says so,
    // tightens the secrets and leaves the folder (reported) as it is.
    for (path, loose) in [
        (data.join("soute.db"), 0o644),
        (data.join("tls/server.key"), 0o640),
        (data.clone(), 0o755),
    ] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(loose)).expect("chmod");
    }
    let server = Server::start(&cwd, &["--data", "d", "--tls", "off"]);
    let log = server.log_with("left as is");
    drop(server.stop());
    let db_line = format!("{} has mode 0644", data.join("soute.db").display());
    assert!(
        log.contains(&db_line) && log.contains("set it to 0600"),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "{} has mode 0640",
            data.join("tls/server.key").display()
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!("{} has mode 0755", data.display())),
        "{log}"
    );
    assert!(log.contains("left as is"), "{log}");
    assert_eq!(mode(&data.join("soute.db")), 0o600);
    assert_eq!(mode(&data.join("tls/server.key")), 0o600);
    assert_eq!(mode(&data), 0o755, "the folder is reported, not changed");
}

/// `soute user`, `group`, `access` and `token` on one folder: `access check`
/// prints allow or deny and the rule that decided; bad WHO, PATTERN and
/// ACTION are usage errors (exit 2) that change nothing.
#[test]
fn access_commands_grant_check_and_tokens() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cwd = tmp.path().canonicalize().expect("canonical");
    std::fs::create_dir(cwd.join("reg")).expect("mkdir");
    let ok = |args: &[&str], stdin: &[u8]| -> String {
        let mut argv = args.to_vec();
        argv.extend(["--data", "reg"]);
        let out = run_with(soute(&cwd, &argv), stdin);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    let fails = |args: &[&str], code: i32, says: &str| {
        let mut argv = args.to_vec();
        argv.extend(["--data", "reg"]);
        let out = run(&cwd, &argv);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{args:?}: {}",
            text(&out.stderr)
        );
        let err = text(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
        assert_no_oci_code(&err);
    };
    assert!(ok(&["user", "add", "root"], b"root-pw\n").contains("(an administrator)"));
    assert!(ok(&["user", "add", "bob"], b"bob-pw\n").contains("no administrator"));
    assert!(ok(&["user", "add", "eve", "--admin"], b"eve-pw\n").contains("(an administrator)"));
    ok(&["group", "add", "devs"], b"");
    ok(&["group", "member", "add", "devs", "bob"], b"");
    assert_eq!(
        ok(
            &["access", "grant", "group:devs", "team/**", "push,pull"],
            b""
        ),
        "granted: group:devs team/** pull,push\n"
    );
    ok(&["access", "grant", "bob", "team/secret/**", "none"], b"");
    ok(&["access", "grant", "anonymous", "public/**", "pull"], b"");
    let checks: &[(&[&str], &str)] = &[
        (
            &["bob", "team/app", "push"],
            "allow: rule group:devs team/** pull,push",
        ),
        (
            &["bob", "team/secret/db", "pull"],
            "deny: rule bob team/secret/** none",
        ),
        (
            &["bob", "team/app", "delete"],
            "deny: rule group:devs team/** pull,push",
        ),
        (&["bob", "other/x", "pull"], "deny: no rule applies"),
        (
            &["bob", "public/x", "pull"],
            "allow: rule anonymous public/** pull",
        ),
        (
            &["root", "any/thing", "delete"],
            "allow: the user is an administrator",
        ),
        (&["anonymous", "team/app", "pull"], "deny: no rule applies"),
    ];
    for (args, want) in checks {
        let mut argv = vec!["access", "check"];
        argv.extend_from_slice(args);
        assert_eq!(ok(&argv, b"").trim_end(), *want, "{args:?}");
    }
    assert_eq!(
        ok(
            &[
                "access",
                "check",
                "anonymous",
                "x/y",
                "pull",
                "--anonymous-pull"
            ],
            b""
        )
        .trim_end(),
        "allow: rule anonymous ** pull (--anonymous-pull)"
    );
    let listed: serde_json::Value =
        serde_json::from_str(&ok(&["access", "list", "--json"], b"")).expect("json");
    assert_eq!(listed.as_array().map(Vec::len), Some(3), "{listed}");
    let users = ok(&["user", "list"], b"");
    let rows: Vec<Vec<&str>> = users
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["NAME", "ADMIN", "GROUPS"], "{users}");
    assert!(rows.contains(&vec!["bob", "no", "devs"]), "{users}");
    assert!(rows.contains(&vec!["eve", "yes", "-"]), "{users}");

    // Bad input: a usage error, nothing changed.
    fails(
        &["access", "grant", "bob", "Team/**", "pull"],
        2,
        "invalid pattern",
    );
    fails(
        &["access", "grant", "bob", "**", "write"],
        2,
        "unknown action",
    );
    fails(&["access", "grant", "team:devs", "**", "pull"], 2, "WHO");
    fails(
        &["access", "grant", "nobody", "**", "pull"],
        1,
        "no user nobody",
    );
    fails(
        &["access", "grant", "group:ops", "**", "pull"],
        1,
        "no group ops",
    );
    fails(
        &["access", "check", "bob", "Bad Repo", "pull"],
        2,
        "not a repository name",
    );
    fails(&["token", "create", "ci"], 2, "--user is required");
    fails(
        &["token", "create", "ci", "--user", "bob", "--expires", "3w"],
        2,
        "--expires",
    );
    fails(
        &[
            "token", "create", "ci", "--user", "bob", "--scope", "team/**",
        ],
        2,
        "--scope",
    );
    let listed: serde_json::Value =
        serde_json::from_str(&ok(&["access", "list", "--json"], b"")).expect("json");
    assert_eq!(listed.as_array().map(Vec::len), Some(3), "{listed}");

    // Tokens: the secret once, listed without it, revoked once.
    let secret = ok(
        &[
            "token",
            "create",
            "ci",
            "--user",
            "bob",
            "--scope",
            "team/**:pull",
            "--expires",
            "90d",
        ],
        b"",
    );
    let secret = secret.trim();
    assert!(
        secret.starts_with("soute_") && secret.len() == 70,
        "{secret}"
    );
    let tokens = ok(&["token", "list"], b"");
    let row = tokens
        .lines()
        .find(|l| l.starts_with("ci\t"))
        .expect(&tokens);
    let cols: Vec<&str> = row.split('\t').collect();
    assert_eq!(&cols[..3], ["ci", "bob", "team/**:pull"], "{tokens}");
    assert_ne!(cols[4], "never", "expires: {tokens}");
    assert_eq!(cols[5], "never", "last used: {tokens}");
    assert!(!tokens.contains(secret));
    fails(&["token", "create", "ci", "--user", "bob"], 1, "exists");
    ok(&["token", "revoke", "ci"], b"");
    fails(&["token", "revoke", "ci"], 1, "no token ci");

    // Deleting a user deletes its rules; deleting a group, its rules.
    ok(&["user", "del", "bob"], b"");
    let rules = ok(&["access", "list"], b"");
    assert!(!rules.contains("team/secret"), "{rules}");
    ok(&["user", "add", "bob"], b"bob-pw\n");
    ok(&["group", "member", "add", "devs", "bob"], b"");
    assert!(ok(&["access", "check", "bob", "team/app", "push"], b"").starts_with("allow"));
    ok(&["group", "del", "devs"], b"");
    let rules = ok(&["access", "list"], b"");
    assert!(!rules.contains("group:devs"), "{rules}");
    assert_eq!(
        ok(&["access", "check", "bob", "team/app", "push"], b"").trim_end(),
        "deny: no rule applies"
    );
}

/// `soute --help | head -0`: the reader is gone before soute writes a byte.
/// soute ends killed by SIGPIPE, as `ls` or `cat` would, never with a panic
/// ("failed printing to stdout") on stderr.
#[test]
fn a_closed_stdout_pipe_ends_the_command_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let tmp = tempfile::tempdir().expect("tempdir");
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let mut cmd = soute(tmp.path(), &["--help"]);
    cmd.stdout(writer).stderr(Stdio::piped());
    let out = cmd.output().expect("run soute");
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{stderr}");
}
