//! The real `soute` binary as a child process: a clean environment, its
//! stdout lines and stderr collected by threads, `serve` with the listening
//! address read back, SIGTERM, bounded waiting for the exit; [`Served`]
//! can own its temporary folder, restart on it, and show its log so far.
//! Must NEVER leave a child running after its [`Proc`] is dropped, or wait
//! for a child without a deadline.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long `serve` may take to print its listening line.
pub const STARTUP: Duration = Duration::from_secs(30);

/// The `soute` binary, with the REGISTRY_* environment and RUST_LOG cleared.
pub fn soute_bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_soute"));
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("REGISTRY_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// Runs `soute ARGS...` to the end: (exit ok, stdout, stderr).
pub fn run_soute(args: &[&str]) -> (bool, String, String) {
    run_soute_with(args, &[])
}

/// [`run_soute`] with the variables `env` added to its environment.
pub fn run_soute_with(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = soute_bin()
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run soute");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `soute user ACTION NAME --data DIR`, the password (if any) on stdin.
/// Panics unless the command succeeds.
pub fn user_cmd(data: &Path, args: &[&str], password: Option<&str>) -> Output {
    let out = try_user_cmd(data, args, password);
    assert!(
        out.status.success(),
        "soute user {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// [`user_cmd`] that returns the output whether it succeeded or not.
pub fn try_user_cmd(data: &Path, args: &[&str], password: Option<&str>) -> Output {
    data_cmd("user", data, args, password)
}

/// `soute COMMAND ARGS... --data DIR` to its end, `stdin_line` (if any)
/// written to its stdin as one line; success or not.
pub fn data_cmd(command: &str, data: &Path, args: &[&str], stdin_line: Option<&str>) -> Output {
    let mut cmd = soute_bin();
    cmd.arg(command)
        .args(args)
        .arg("--data")
        .arg(data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn soute");
    {
        let mut stdin = child.stdin.take().expect("stdin");
        if let Some(line) = stdin_line {
            stdin
                .write_all(format!("{line}\n").as_bytes())
                .expect("write stdin");
        }
    }
    child.wait_with_output().expect("soute")
}

/// A spawned process whose stdout and stderr are collected by threads (so it
/// never blocks on a full pipe). Killed on drop if still running.
pub struct Proc {
    pub child: std::process::Child,
    stdout: Option<JoinHandle<String>>,
    stderr: Option<JoinHandle<String>>,
    /// Stderr as read so far (the log of a running server).
    stderr_so_far: Arc<Mutex<Vec<u8>>>,
    /// Lines of stdout as they arrive.
    pub lines: mpsc::Receiver<String>,
}

impl Proc {
    pub fn spawn(mut cmd: Command) -> Proc {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {:?}: {e}", cmd.get_program()));
        let out = child.stdout.take().expect("stdout");
        let mut err = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        let stdout = std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                all.push_str(&line);
                all.push('\n');
                let _ = tx.send(line);
            }
            all
        });
        let stderr_so_far = Arc::new(Mutex::new(Vec::new()));
        let so_far = Arc::clone(&stderr_so_far);
        let stderr = std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match err.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => so_far
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .extend_from_slice(&buf[..n]),
                }
            }
            let all = so_far.lock().unwrap_or_else(|e| e.into_inner());
            String::from_utf8_lossy(&all).into_owned()
        });
        Proc {
            child,
            stdout: Some(stdout),
            stderr: Some(stderr),
            stderr_so_far,
            lines,
        }
    }

    /// What the process wrote to stderr so far (it may still be running).
    pub fn stderr_so_far(&self) -> String {
        let all = self.stderr_so_far.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&all).into_owned()
    }

    /// The first stdout line starting with `prefix`, with the prefix cut off;
    /// fails after `limit`. Other lines are skipped (and printed).
    pub fn wait_line(&self, prefix: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => match line.strip_prefix(prefix) {
                    Some(rest) => return rest.trim().to_string(),
                    None => eprintln!("(stdout) {line}"),
                },
                Err(e) => panic!("no stdout line starting with {prefix:?} within {limit:?}: {e}"),
            }
        }
    }

    /// Waits at most `limit` for the process to end (killing it after that,
    /// and failing); returns its exit status, stdout and stderr.
    pub fn finish(mut self, limit: Duration) -> (ExitStatus, String, String) {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("process did not end within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let (out, err) = self.collected();
        (status, out, err)
    }

    /// SIGTERM, then SIGKILL if it has not ended after `grace`; returns
    /// stdout and stderr (never fails).
    pub fn stop(mut self, grace: Duration) -> (String, String) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Ok(None) = self.child.try_wait() {
            eprintln!("process did not stop within {grace:?} of SIGTERM: SIGKILL");
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        self.collected()
    }

    fn collected(&mut self) -> (String, String) {
        let out = self.stdout.take().map(|h| h.join().unwrap_or_default());
        let err = self.stderr.take().map(|h| h.join().unwrap_or_default());
        (out.unwrap_or_default(), err.unwrap_or_default())
    }

    /// SIGTERM through kill(1) (the crate forbids the unsafe libc call).
    pub fn terminate(&self) {
        let ok = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(ok.success(), "kill -TERM failed");
    }

    /// SIGKILL now and reap (a crash, as far as the data folder knows).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `soute serve --data DIR --listen 127.0.0.1:0 --tls off --gc-interval 0
/// --workers 8 EXTRA...` with the plain-HTTP address it printed (`--workers
/// 8` left out when EXTRA names `--workers`).
pub struct Served {
    pub proc: Proc,
    pub addr: SocketAddr,
    dir: PathBuf,
    /// The temporary folder holding `dir` when [`Served::fresh`] made it.
    temp: Option<tempfile::TempDir>,
}

/// Spawns `soute serve` on loopback without TLS and waits (at most
/// [`STARTUP`]) for its `soute listening on http://ADDR` line.
pub fn serve(dir: &Path, extra: &[&str]) -> Served {
    let mut cmd = soute_bin();
    cmd.args(["serve", "--data"]).arg(dir).args([
        "--listen",
        "127.0.0.1:0",
        "--tls",
        "off",
        "--gc-interval",
        "0",
    ]);
    if !extra.contains(&"--workers") {
        cmd.args(["--workers", "8"]);
    }
    cmd.args(extra);
    let proc = Proc::spawn(cmd);
    let addr = proc
        .wait_line("soute listening on http://", STARTUP)
        .parse()
        .expect("listening address");
    Served {
        proc,
        addr,
        dir: dir.to_path_buf(),
        temp: None,
    }
}

impl Served {
    /// [`serve`] on a new data folder inside a temporary folder that lives
    /// as long as this server (and its restarts).
    pub fn fresh(extra: &[&str]) -> Served {
        let temp = tempfile::tempdir().expect("tempdir");
        let mut served = serve(&temp.path().join("data"), extra);
        served.temp = Some(temp);
        served
    }

    /// SIGKILLs this server and starts another on the same folder.
    pub fn restart(mut self, extra: &[&str]) -> Served {
        self.proc.kill();
        let temp = self.temp.take();
        let mut next = serve(&self.dir, extra);
        next.temp = temp;
        next
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn pid(&self) -> u32 {
        self.proc.child.id()
    }

    /// The data folder it serves.
    pub fn folder(&self) -> &Path {
        &self.dir
    }

    /// What it logged (stderr) so far.
    pub fn log_text(&self) -> String {
        self.proc.stderr_so_far()
    }

    /// `soute user ARGS --data <folder>`, success or not ([`try_user_cmd`]).
    pub fn user(&self, args: &[&str], password: Option<&str>) -> Output {
        try_user_cmd(&self.dir, args, password)
    }

    /// `soute user ARGS --data <folder>`, which must succeed ([`user_cmd`]).
    pub fn user_ok(&self, args: &[&str], password: Option<&str>) -> Output {
        user_cmd(&self.dir, args, password)
    }
}
