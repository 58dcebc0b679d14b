//! The echo responder: UDP (blocking or busy-spin) and TCP, on a thread of its own,
//! optionally inside a network namespace and pinned to a CPU.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nfvi_harness::panics;

use super::Proto;

/// Pins the calling thread to `cpu`.
pub fn pin_current_thread(cpu: usize) -> Result<(), String> {
    let mut set = nix::sched::CpuSet::new();
    set.set(cpu).map_err(|e| format!("CPU {cpu}: {e}"))?;
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
        .map_err(|e| format!("pinning to CPU {cpu}: {e}"))
}

/// Serves echo requests on `socket` until `stop` is set (checked every 100 ms), in the given
/// mode. Returns the number of datagrams echoed.
pub fn serve(socket: &UdpSocket, stop: &AtomicBool, spin: bool) -> Result<u64, String> {
    let mut buf = [0u8; 65536];
    let mut served = 0u64;
    if spin {
        socket.set_nonblocking(true).map_err(|e| e.to_string())?;
    } else {
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .map_err(|e| e.to_string())?;
    }
    while !stop.load(Ordering::Relaxed) {
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => {
                let _ = socket.send_to(&buf[..n], from);
                served += 1;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if spin {
                    std::hint::spin_loop();
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
            Err(e) => return Err(format!("echo responder: {e}")),
        }
    }
    Ok(served)
}

/// A running responder thread; stopping it joins the thread.
pub struct Responder {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<Result<u64, String>>>,
    /// The address it listens on.
    pub addr: SocketAddr,
}

impl Responder {
    /// Stops the responder and returns how many datagrams it echoed.
    pub fn stop(mut self) -> Result<u64, String> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().map_or(Ok(0), |h| {
            h.join()
                .map_err(|p| format!("the responder {}", panics::join_message(&*p)))?
        })
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take()
            && let Err(p) = h.join()
        {
            // Nobody to return it to: into the run's log, with where it panicked.
            panics::log_joined("the responder (stopped when dropped)", &*p);
        }
    }
}

/// Starts a UDP responder on `bind`, inside the namespace at `netns` (or the current one).
pub fn start_responder(
    netns: Option<&std::path::Path>,
    bind: SocketAddr,
    spin: bool,
) -> Result<Responder, String> {
    start_responder_proto(netns, bind, spin, Proto::Udp)
}

/// Starts a UDP or TCP responder on `bind`.
pub fn start_responder_proto(
    netns: Option<&std::path::Path>,
    bind: SocketAddr,
    spin: bool,
    proto: Proto,
) -> Result<Responder, String> {
    start_responder_on(netns, bind, spin, proto, None)
}

/// Starts a responder, its thread pinned to `pin` when given.
pub fn start_responder_on(
    netns: Option<&std::path::Path>,
    bind: SocketAddr,
    spin: bool,
    proto: Proto,
    pin: Option<usize>,
) -> Result<Responder, String> {
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let flag = stop.clone();
    let body = move || -> Result<u64, String> {
        if let Some(cpu) = pin {
            pin_current_thread(cpu)?;
        }
        if proto == Proto::Tcp {
            return match std::net::TcpListener::bind(bind) {
                Ok(l) => {
                    let _ = ready_tx.send(Ok(()));
                    serve_tcp(&l, &flag)
                }
                Err(e) => {
                    let e = format!("cannot bind the responder to {bind}: {e}");
                    let _ = ready_tx.send(Err(e.clone()));
                    Err(e)
                }
            };
        }
        let socket =
            UdpSocket::bind(bind).map_err(|e| format!("cannot bind the responder to {bind}: {e}"));
        let socket = match socket {
            Ok(s) => {
                let _ = ready_tx.send(Ok(()));
                s
            }
            Err(e) => {
                let _ = ready_tx.send(Err(e.clone()));
                return Err(e);
            }
        };
        serve(&socket, &flag, spin)
    };
    let handle = match netns {
        Some(path) => nfvi_net::spawn_in_with(path, move |entered| {
            entered.map_err(|e| nfvi_net::chain(&e))?;
            body()
        })
        .map_err(|e| nfvi_net::chain(&e))?,
        None => std::thread::spawn(body),
    };
    match ready_rx.recv_timeout(Duration::from_secs(5)) {
        Ok(Ok(())) => Ok(Responder {
            stop,
            handle: Some(handle),
            addr: bind,
        }),
        Ok(Err(e)) => Err(e),
        Err(_) => {
            stop.store(true, Ordering::Relaxed);
            let joined = handle
                .join()
                .map_err(|p| format!("the responder {}", panics::join_message(&*p)))?;
            Err(joined
                .err()
                .unwrap_or_else(|| "the responder did not start".to_owned()))
        }
    }
}

/// Serves TCP request/response probes: each connection echoes what it reads, in order.
fn serve_tcp(listener: &std::net::TcpListener, stop: &AtomicBool) -> Result<u64, String> {
    use std::io::{Read, Write};
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let mut served = 0u64;
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((mut conn, _)) => {
                conn.set_nonblocking(false).map_err(|e| e.to_string())?;
                conn.set_nodelay(true).map_err(|e| e.to_string())?;
                conn.set_read_timeout(Some(Duration::from_millis(100)))
                    .map_err(|e| e.to_string())?;
                let mut buf = [0u8; 65536];
                while !stop.load(Ordering::Relaxed) {
                    match conn.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            if conn.write_all(&buf[..n]).is_err() {
                                break;
                            }
                            served += 1;
                        }
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                            ) => {}
                        Err(_) => break,
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) => return Err(format!("accept: {e}")),
        }
    }
    Ok(served)
}
