//! A webhook receiver on loopback: a small HTTP/1.1 server (one thread
//! accepting, one per connection, each request answered then the
//! connection closed) that records every request it reads (time, headers,
//! body) and answers as its [`Mode`] says: a status, or nothing for a while
//! (a receiver that hangs). It can be stopped and started again on the same
//! port (a receiver that is down for a while).
//! Must NEVER listen on a non-loopback address, read without a timeout, or
//! keep a thread running after it is stopped or dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How the receiver answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Status(u16),
    /// Read the request, record it, then answer nothing for this long.
    Hang(Duration),
}

/// One request the receiver read.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub at: Instant,
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The status it was answered with (0: none, it hung).
    pub answered: u16,
}

impl Delivery {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (panics if it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("delivery body is not JSON ({e}): {:?}", self.body))
    }

    /// The `events` array of the envelope.
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.json()["events"]
            .as_array()
            .cloned()
            .unwrap_or_else(|| panic!("no events array in {}", self.json()))
    }
}

struct Shared {
    mode: Mutex<Mode>,
    log: Mutex<Vec<Delivery>>,
    stop: AtomicBool,
}

pub struct Receiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl Receiver {
    /// A receiver on an ephemeral loopback port.
    pub fn start(mode: Mode) -> Receiver {
        Receiver::start_on("127.0.0.1:0".parse().expect("addr"), mode, Vec::new())
    }

    fn start_on(addr: SocketAddr, mode: Mode, log: Vec<Delivery>) -> Receiver {
        assert!(addr.ip().is_loopback());
        let listener = TcpListener::bind(addr).expect("bind the receiver");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared {
            mode: Mutex::new(mode),
            log: Mutex::new(log),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        let accept = std::thread::spawn(move || {
            let mut conns: Vec<JoinHandle<()>> = Vec::new();
            while !s.stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let s = s.clone();
                        conns.push(std::thread::spawn(move || serve(stream, &s)));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            drop(listener);
            for c in conns {
                let _ = c.join();
            }
        });
        Receiver {
            addr,
            shared,
            accept: Some(accept),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().expect("mode") = mode;
    }

    /// Every request read so far, oldest first.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared.log.lock().expect("log").clone()
    }

    /// The events of the deliveries answered 2xx, in order.
    pub fn accepted_events(&self) -> Vec<serde_json::Value> {
        self.deliveries()
            .iter()
            .filter(|d| (200..300).contains(&d.answered))
            .flat_map(|d| d.events())
            .collect()
    }

    /// Stops listening (the port refuses connections) and returns what it
    /// recorded, to be given to [`Receiver::restart`].
    pub fn stop(mut self) -> (SocketAddr, Vec<Delivery>) {
        self.halt();
        (self.addr, self.deliveries())
    }

    /// A receiver on the same port again, keeping the old record.
    pub fn restart(addr: SocketAddr, mode: Mode, log: Vec<Delivery>) -> Receiver {
        Receiver::start_on(addr, mode, log)
    }

    fn halt(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.halt();
    }
}

fn serve(stream: TcpStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    for _ in 0..100 {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((n, v)) = h.split_once(':') {
            headers.push((n.trim().to_string(), v.trim().to_string()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len.min(16 * 1024 * 1024)];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let mode = *shared.mode.lock().expect("mode");
    let answered = match mode {
        Mode::Status(s) => s,
        Mode::Hang(_) => 0,
    };
    shared.log.lock().expect("log").push(Delivery {
        at: Instant::now(),
        method,
        path,
        headers,
        body,
        answered,
    });
    let mut stream = stream;
    match mode {
        Mode::Status(status) => {
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
            );
        }
        Mode::Hang(limit) => {
            let end = Instant::now() + limit;
            while Instant::now() < end && !shared.stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    let _ = stream.flush();
}
