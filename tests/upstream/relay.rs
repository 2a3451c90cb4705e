//! A loopback TCP relay between soute and an upstream, to inject faults
//! into the upstream's answers: cut a connection once it has carried N
//! bytes towards soute (once), flip the byte at offset N of every
//! connection, or stall a connection at N bytes until the relay is told to
//! pass again or dropped. Offsets count a connection's bytes towards soute,
//! headers included; the tests' blobs are large enough that N lands in one.
//! Must NEVER listen anywhere but 127.0.0.1, connect anywhere but its
//! loopback target, or outlive its value (every thread is joined, every
//! socket read is bounded by a timeout that checks the stop flag).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Forward everything.
    Pass,
    /// The first connection to carry more than N bytes is cut there.
    CutAt(u64),
    /// Every connection's byte at offset N is flipped.
    FlipAt(u64),
    /// Connections stop forwarding at N bytes while this is the fault.
    StallAt(u64),
}

struct State {
    fault: Mutex<Fault>,
    stop: AtomicBool,
    cuts: AtomicU32,
}

pub struct Relay {
    pub addr: String,
    state: Arc<State>,
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: Option<JoinHandle<()>>,
}

const POLL: Duration = Duration::from_millis(50);
/// No relay connection lives longer than this.
const LIFETIME: Duration = Duration::from_secs(120);

impl Relay {
    /// A relay on 127.0.0.1 in front of `target` (`127.0.0.1:PORT`).
    pub fn start(target: &str, fault: Fault) -> Relay {
        assert!(target.starts_with("127.0.0.1:"), "loopback targets only");
        let listener = TcpListener::bind("127.0.0.1:0").expect("relay port");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr").to_string();
        let state = Arc::new(State {
            fault: Mutex::new(fault),
            stop: AtomicBool::new(false),
            cuts: AtomicU32::new(0),
        });
        let threads: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (s, t, target) = (state.clone(), threads.clone(), target.to_string());
        let accept = std::thread::spawn(move || {
            let started = Instant::now();
            while !s.stop.load(Ordering::SeqCst) && started.elapsed() < LIFETIME {
                match listener.accept() {
                    Ok((client, _)) => {
                        let Ok(server) = TcpStream::connect(&target) else {
                            continue;
                        };
                        let pair = spawn_pair(client, server, s.clone());
                        t.lock().unwrap_or_else(|p| p.into_inner()).extend(pair);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Relay {
            addr,
            state,
            threads,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:PORT` of the relay.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set(&self, fault: Fault) {
        *self.state.fault.lock().unwrap_or_else(|p| p.into_inner()) = fault;
    }

    /// How many connections `CutAt` cut.
    pub fn cuts(&self) -> u32 {
        self.state.cuts.load(Ordering::SeqCst)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        if let Some(a) = self.accept.take() {
            let _ = a.join();
        }
        for t in self
            .threads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            let _ = t.join();
        }
    }
}

fn spawn_pair(client: TcpStream, server: TcpStream, s: Arc<State>) -> Vec<JoinHandle<()>> {
    for sock in [&client, &server] {
        let _ = sock.set_nonblocking(false);
        let _ = sock.set_read_timeout(Some(POLL));
    }
    let (c2, s2, st) = (
        client.try_clone().expect("clone"),
        server.try_clone().expect("clone"),
        s.clone(),
    );
    let up = std::thread::spawn(move || forward_up(c2, s2, st));
    let down = std::thread::spawn(move || forward_down(server, client, s));
    vec![up, down]
}

/// soute → upstream, as is.
fn forward_up(mut from: TcpStream, mut to: TcpStream, s: Arc<State>) {
    let mut buf = vec![0u8; 64 * 1024];
    let started = Instant::now();
    while !s.stop.load(Ordering::SeqCst) && started.elapsed() < LIFETIME {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// upstream → soute, with the fault.
fn forward_down(mut from: TcpStream, mut to: TcpStream, s: Arc<State>) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    let started = Instant::now();
    while !s.stop.load(Ordering::SeqCst) && started.elapsed() < LIFETIME {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => break,
        };
        let fault = *s.fault.lock().unwrap_or_else(|p| p.into_inner());
        let chunk = &mut buf[..n];
        let end = total + n as u64;
        match fault {
            Fault::FlipAt(at) if (total..end).contains(&at) => chunk[(at - total) as usize] ^= 0xff,
            Fault::CutAt(at) if end > at && s.cuts.load(Ordering::SeqCst) == 0 => {
                s.cuts.fetch_add(1, Ordering::SeqCst);
                let _ = to.write_all(&chunk[..(at.saturating_sub(total)) as usize]);
                let _ = to.shutdown(Shutdown::Both);
                let _ = from.shutdown(Shutdown::Both);
                return;
            }
            Fault::StallAt(at) if end > at => {
                let _ = to.write_all(&chunk[..(at.saturating_sub(total)) as usize]);
                // Hold the rest until told to pass (or stopped).
                while *s.fault.lock().unwrap_or_else(|p| p.into_inner()) == fault
                    && !s.stop.load(Ordering::SeqCst)
                    && started.elapsed() < LIFETIME
                {
                    std::thread::sleep(POLL);
                }
                let _ = to.shutdown(Shutdown::Both);
                let _ = from.shutdown(Shutdown::Both);
                return;
            }
            _ => {}
        }
        if to.write_all(chunk).is_err() {
            break;
        }
        total = end;
    }
    let _ = to.shutdown(Shutdown::Write);
}
