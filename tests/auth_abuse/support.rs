//! Self-contained helpers: the release binary spawned on 127.0.0.1, `soute
//! user` run against its folder, raw HTTP/1.1 over sockets bound to a chosen
//! loopback source address, and the server's own memory from /proc.

use base64::Engine as _;
use socket2::{Domain, Socket, Type};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Longest any single socket operation of a test may take.
pub const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// The binary under test: the release build of this package, unless
/// `SOUTE_AUTH_ABUSE_BIN` names another (to measure an older build the same way).
pub fn binary() -> PathBuf {
    std::env::var_os("SOUTE_AUTH_ABUSE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_soute")))
}

/// A `soute serve` child on 127.0.0.1 (plain HTTP), killed on drop.
pub struct Server {
    child: Child,
    pub port: u16,
    data: tempfile::TempDir,
    log: PathBuf,
}

impl Server {
    /// Starts `soute serve` on a fresh data folder with `extra` flags.
    pub fn start(extra: &[&str]) -> Server {
        Server::start_in(tempfile::tempdir().expect("tempdir"), extra)
    }

    /// Stops this server and starts another on the same folder.
    pub fn restart(mut self, extra: &[&str]) -> Server {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let data = std::mem::replace(&mut self.data, tempfile::tempdir().expect("tempdir"));
        Server::start_in(data, extra)
    }

    fn start_in(data: tempfile::TempDir, extra: &[&str]) -> Server {
        let folder = data.path().join("data");
        let started = std::fs::read_dir(data.path()).map_or(0, |d| d.count());
        let log = data.path().join(format!("server-{started}.log"));
        let mut child = Command::new(binary())
            .args(["serve", "--data"])
            .arg(&folder)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--tls",
                "off",
                "--gc-interval",
                "0",
            ])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn soute");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("read");
        let addr: SocketAddr = line
            .trim()
            .strip_prefix("soute listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .expect("addr");
        Server {
            child,
            port: addr.port(),
            data,
            log,
        }
    }

    pub fn folder(&self) -> PathBuf {
        self.data.path().join("data")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Runs `soute user ARGS --data <folder>` with `password` on stdin.
    pub fn user(&self, args: &[&str], password: Option<&str>) -> Output {
        user_cmd(&self.folder(), args, password)
    }

    /// Like [`Server::user`], and the command must succeed.
    pub fn user_ok(&self, args: &[&str], password: Option<&str>) -> Output {
        let out = self.user(args, password);
        assert!(
            out.status.success(),
            "soute user {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// What the server logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A field of /proc/<pid>/status in KiB (`VmHWM`, `VmRSS`).
    pub fn status_kib(&self, field: &str) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc status"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `soute user ARGS --data DIR`, with `password` on stdin.
pub fn user_cmd(folder: &Path, args: &[&str], password: Option<&str>) -> Output {
    let mut child = Command::new(binary())
        .arg("user")
        .args(args)
        .arg("--data")
        .arg(folder)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn soute user");
    {
        let mut stdin = child.stdin.take().expect("stdin");
        if let Some(pw) = password {
            writeln!(stdin, "{pw}").expect("write password");
        }
    }
    child.wait_with_output().expect("soute user")
}

/// `Authorization` value for Basic credentials.
pub fn basic(user: &str, password: &str) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {token}")
}

/// A TCP connection to 127.0.0.1:`port` from the loopback address `from`.
pub fn connect_from(from: Ipv4Addr, port: u16) -> TcpStream {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    socket
        .bind(&SocketAddrV4::new(from, 0).into())
        .unwrap_or_else(|e| panic!("bind {from}: {e}"));
    socket
        .connect_timeout(
            &SocketAddrV4::new(Ipv4Addr::LOCALHOST, port).into(),
            IO_TIMEOUT,
        )
        .expect("connect");
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    stream.set_write_timeout(Some(IO_TIMEOUT)).expect("timeout");
    stream.set_nodelay(true).expect("nodelay");
    stream
}

/// A request head without a body.
pub fn request(method: &str, path: &str, auth: Option<&str>) -> String {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    if let Some(a) = auth {
        head.push_str(&format!("Authorization: {a}\r\n"));
    }
    if matches!(method, "POST" | "PUT" | "PATCH") {
        head.push_str("Content-Length: 0\r\n");
    }
    head.push_str("\r\n");
    head
}

/// One parsed response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Retry-After in seconds; panics when absent or not a number.
    pub fn retry_after(&self) -> u64 {
        self.header("retry-after")
            .unwrap_or_else(|| panic!("no Retry-After on {self:?}"))
            .parse()
            .expect("Retry-After is a number of seconds")
    }
}

/// Reads one response (heads with Content-Length, as soute always sends on
/// these endpoints). `None` on EOF before a status line.
pub fn read_response(reader: &mut BufReader<TcpStream>) -> Option<Resp> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let status: u16 = line.split(' ').nth(1)?.parse().ok()?;
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).ok()?;
    Some(Resp {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// One request on its own connection from `from`.
pub fn call_from(from: Ipv4Addr, port: u16, method: &str, path: &str, auth: Option<&str>) -> Resp {
    let mut stream = connect_from(from, port);
    stream
        .write_all(request(method, path, auth).as_bytes())
        .expect("write");
    read_response(&mut BufReader::new(stream))
        .unwrap_or_else(|| panic!("no answer to {method} {path}"))
}

/// [`call_from`] 127.0.0.1.
pub fn call(port: u16, method: &str, path: &str, auth: Option<&str>) -> Resp {
    call_from(Ipv4Addr::LOCALHOST, port, method, path, auth)
}

/// Polls `f` every 20 ms until it returns `Some`, for at most `limit`.
pub fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
