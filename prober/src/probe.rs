//! The latency prober: a UDP echo responder and a client that keeps one message in flight,
//! matches replies by sequence number, times them with the monotonic clock and records them
//! in an HDR histogram. Blocking, busy-spin and paced modes. Every probe has a deadline and a
//! run stops after a streak of unanswered probes, so an unreachable peer never hangs it.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use nfvi_harness::panics;
use serde::Serialize;

/// How the client waits for a reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Block in recv (sleeping); the common case, includes the wake-up.
    Blocking,
    /// Busy-spin on a non-blocking socket; the lowest, least noisy numbers, one core busy.
    Spin,
    /// One probe every `interval`, blocking; like ping.
    Paced,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "blocking" => Ok(Mode::Blocking),
            "spin" => Ok(Mode::Spin),
            "paced" => Ok(Mode::Paced),
            other => Err(format!(
                "unknown mode `{other}`; expected blocking, spin or paced"
            )),
        }
    }
}

/// The transport of the probes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Proto {
    /// One UDP datagram per probe.
    Udp,
    /// Request/response over one TCP connection (Nagle off), fixed-size messages.
    Tcp,
}

impl std::str::FromStr for Proto {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "udp" => Ok(Proto::Udp),
            "tcp" => Ok(Proto::Tcp),
            other => Err(format!("unknown protocol `{other}`; expected udp or tcp")),
        }
    }
}

/// What a ping run does.
#[derive(Clone, Debug)]
pub struct PingConfig {
    /// Measured probes (after warm-up).
    pub count: u64,
    /// Stop after this long even if `count` is not reached.
    pub duration: Option<Duration>,
    /// Probes sent first and discarded.
    pub warmup: u64,
    /// How to wait.
    pub mode: Mode,
    /// Interval for paced mode.
    pub interval: Duration,
    /// Deadline of one probe.
    pub probe_timeout: Duration,
    /// Stop when this many probes in a row go unanswered.
    pub max_consecutive_losses: u32,
    /// Datagram size in bytes (at least 8).
    pub payload: usize,
    /// Keep every RTT in nanoseconds (for block statistics).
    pub keep_samples: bool,
    /// UDP or TCP.
    pub proto: Proto,
    /// UDP blocking mode only: take the receive time from the kernel's software timestamp
    /// (SO_TIMESTAMPNS) instead of after the wake-up, which removes the client's scheduling
    /// delay from the RTT. Send time is taken just before `send`.
    pub kernel_rx_timestamps: bool,
}

impl Default for PingConfig {
    fn default() -> Self {
        Self {
            count: 10_000,
            duration: None,
            warmup: 1_000,
            mode: Mode::Blocking,
            interval: Duration::from_millis(10),
            probe_timeout: Duration::from_millis(200),
            max_consecutive_losses: 10,
            payload: 16,
            keep_samples: false,
            proto: Proto::Udp,
            kernel_rx_timestamps: false,
        }
    }
}

/// Percentiles and moments of a run, in microseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Replies received and measured.
    pub count: u64,
    /// Probes that got no reply in time.
    pub lost: u64,
    /// Warm-up probes discarded.
    pub warmup_discarded: u64,
    /// Minimum.
    pub min_us: f64,
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Maximum.
    pub max_us: f64,
    /// Mean.
    pub mean_us: f64,
    /// Standard deviation.
    pub stddev_us: f64,
    /// Wall time of the measured part, seconds.
    pub elapsed_secs: f64,
}

/// A finished ping run.
pub struct PingResult {
    /// The histogram of RTTs in nanoseconds.
    pub histogram: Histogram<u64>,
    /// Every RTT in nanoseconds, if asked for.
    pub samples_ns: Vec<u64>,
    /// The summary.
    pub summary: Summary,
}

/// The most elements a buffer is given before the first one arrives; beyond it, it grows as
/// they come (a count or a number of rounds from the command line is no allocation size).
const PREALLOC_MAX: usize = 1 << 16;

/// The capacity to reserve for `n` elements expected: at most [`PREALLOC_MAX`].
fn prealloc(n: impl TryInto<usize>) -> usize {
    n.try_into()
        .map_or(PREALLOC_MAX, |n: usize| n.min(PREALLOC_MAX))
}

/// Pins the calling thread to `cpu`.
pub fn pin_current_thread(cpu: usize) -> Result<(), String> {
    let mut set = nix::sched::CpuSet::new();
    set.set(cpu).map_err(|e| format!("CPU {cpu}: {e}"))?;
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
        .map_err(|e| format!("pinning to CPU {cpu}: {e}"))
}

/// A histogram for RTTs from 1 ns to 60 s with 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

/// Summarises a histogram.
pub fn summarize(h: &Histogram<u64>, lost: u64, warmup: u64, elapsed: Duration) -> Summary {
    let us = |ns: u64| ns as f64 / 1000.0;
    Summary {
        count: h.len(),
        lost,
        warmup_discarded: warmup,
        min_us: us(h.min()),
        p50_us: us(h.value_at_quantile(0.50)),
        p90_us: us(h.value_at_quantile(0.90)),
        p99_us: us(h.value_at_quantile(0.99)),
        p999_us: us(h.value_at_quantile(0.999)),
        max_us: us(h.max()),
        mean_us: h.mean() / 1000.0,
        stddev_us: h.stdev() / 1000.0,
        elapsed_secs: elapsed.as_secs_f64(),
    }
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

/// A TCP ping: one connection, one request in flight, blocking reads.
fn ping_tcp(peer: SocketAddr, cfg: &PingConfig) -> Result<PingResult, String> {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect_timeout(&peer, cfg.probe_timeout)
        .map_err(|e| format!("cannot connect to {peer}: {e}"))?;
    conn.set_nodelay(true).map_err(|e| e.to_string())?;
    conn.set_read_timeout(Some(cfg.probe_timeout))
        .map_err(|e| e.to_string())?;
    let payload = cfg.payload.max(8);
    let (mut out, mut buf) = (vec![0u8; payload], vec![0u8; payload]);
    let mut hist = new_histogram();
    let mut samples = Vec::new();
    let mut measured_start = Instant::now();
    for seq in 0..cfg.warmup.saturating_add(cfg.count) {
        if seq == cfg.warmup {
            measured_start = Instant::now();
        }
        if cfg
            .duration
            .is_some_and(|d| seq >= cfg.warmup && measured_start.elapsed() >= d)
        {
            break;
        }
        out[..8].copy_from_slice(&seq.to_le_bytes());
        let t0 = Instant::now();
        conn.write_all(&out)
            .map_err(|e| format!("send to {peer}: {e}"))?;
        conn.read_exact(&mut buf).map_err(|e| {
            format!(
                "{peer} did not answer within {} ms: {e}",
                cfg.probe_timeout.as_millis()
            )
        })?;
        let ns = (t0.elapsed().as_nanos() as u64).max(1);
        if seq >= cfg.warmup {
            hist.record(ns).map_err(|e| e.to_string())?;
            if cfg.keep_samples {
                samples.push(ns);
            }
        }
        if cfg.mode == Mode::Paced {
            std::thread::sleep(cfg.interval.saturating_sub(t0.elapsed()));
        }
    }
    if hist.is_empty() {
        return Err(format!("no reply from {peer}"));
    }
    let summary = summarize(&hist, 0, cfg.warmup, measured_start.elapsed());
    Ok(PingResult {
        histogram: hist,
        samples_ns: samples,
        summary,
    })
}

/// Receives one datagram and the kernel's receive timestamp (CLOCK_REALTIME).
fn recv_with_timestamp(
    socket: &UdpSocket,
    buf: &mut [u8],
) -> std::io::Result<(usize, Option<Duration>)> {
    use std::io::IoSliceMut;
    use std::os::fd::AsRawFd;

    use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg};
    let mut cmsg = nix::cmsg_space!(nix::sys::time::TimeSpec);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<SockaddrStorage>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )
    .map_err(std::io::Error::from)?;
    let mut stamp = None;
    for c in msg.cmsgs().map_err(std::io::Error::from)? {
        if let ControlMessageOwned::ScmTimestampns(ts) = c {
            stamp = Some(Duration::new(ts.tv_sec() as u64, ts.tv_nsec() as u32));
        }
    }
    Ok((msg.bytes, stamp))
}

/// Runs a ping: warm-up, then measured probes, one in flight.
pub fn ping(peer: SocketAddr, cfg: &PingConfig) -> Result<PingResult, String> {
    if cfg.proto == Proto::Tcp {
        return ping_tcp(peer, cfg);
    }
    if cfg.kernel_rx_timestamps && cfg.mode == Mode::Spin {
        return Err("kernel timestamps are for blocking or paced mode".to_owned());
    }
    let bind: SocketAddr = if peer.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()
    .expect("literal");
    let socket = UdpSocket::bind(bind).map_err(|e| format!("cannot open a UDP socket: {e}"))?;
    socket
        .connect(peer)
        .map_err(|e| format!("cannot reach {peer}: {e}"))?;
    let spin = cfg.mode == Mode::Spin;
    if spin {
        socket.set_nonblocking(true).map_err(|e| e.to_string())?;
    } else {
        socket
            .set_read_timeout(Some(cfg.probe_timeout))
            .map_err(|e| e.to_string())?;
    }
    if cfg.kernel_rx_timestamps {
        nix::sys::socket::setsockopt(
            &socket,
            nix::sys::socket::sockopt::ReceiveTimestampns,
            &true,
        )
        .map_err(|e| format!("SO_TIMESTAMPNS: {e}"))?;
    }
    let realtime = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
    };
    let payload = cfg.payload.max(8);
    let mut out = vec![0u8; payload];
    let mut buf = vec![0u8; payload.max(64)];
    let mut hist = new_histogram();
    // Grown as replies come, never sized by the asked count: a count is not a promise of
    // replies, and a huge one must not allocate up front.
    let mut samples = Vec::with_capacity(if cfg.keep_samples {
        prealloc(cfg.count)
    } else {
        0
    });
    let (mut lost, mut streak, mut seq) = (0u64, 0u32, 0u64);
    let mut measured_start = Instant::now();
    // Any count and warm-up, even both near u64::MAX: saturating, never wrapping.
    let total = cfg.warmup.saturating_add(cfg.count);
    while seq < total {
        if seq == cfg.warmup {
            measured_start = Instant::now();
        }
        if let Some(d) = cfg.duration
            && seq >= cfg.warmup
            && measured_start.elapsed() >= d
        {
            break;
        }
        out[..8].copy_from_slice(&seq.to_le_bytes());
        let (t0, sent_at) = (Instant::now(), realtime());
        if let Err(e) = socket.send(&out) {
            return Err(format!("send to {peer}: {e}"));
        }
        let rtt = loop {
            let got = if cfg.kernel_rx_timestamps {
                recv_with_timestamp(&socket, &mut buf)
            } else {
                socket.recv(&mut buf).map(|n| (n, None))
            };
            match got {
                Ok((n, stamp)) if n >= 8 && buf[..8] == seq.to_le_bytes() => {
                    break Some(
                        stamp
                            .and_then(|s| s.checked_sub(sent_at))
                            .unwrap_or_else(|| t0.elapsed()),
                    );
                }
                Ok(_) => {} // a late reply to an earlier probe
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    // Blocking mode waits the whole timeout inside recv; spin mode checks here.
                    if !spin || t0.elapsed() >= cfg.probe_timeout {
                        break None;
                    }
                    std::hint::spin_loop();
                }
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => break None,
                Err(e) => return Err(format!("receive from {peer}: {e}")),
            }
        };
        match rtt {
            Some(d) => {
                streak = 0;
                if seq >= cfg.warmup {
                    let ns = (d.as_nanos() as u64).max(1);
                    hist.record(ns).map_err(|e| e.to_string())?;
                    if cfg.keep_samples {
                        samples.push(ns);
                    }
                }
            }
            None => {
                streak = streak.saturating_add(1);
                if seq >= cfg.warmup {
                    lost += 1;
                }
                if streak >= cfg.max_consecutive_losses {
                    return Err(format!(
                        "{peer} did not answer {streak} probes in a row ({} ms each): unreachable or not running a responder",
                        cfg.probe_timeout.as_millis()
                    ));
                }
            }
        }
        seq += 1;
        if cfg.mode == Mode::Paced {
            std::thread::sleep(cfg.interval.saturating_sub(t0.elapsed()));
        }
    }
    if hist.is_empty() {
        return Err(format!("no reply from {peer}"));
    }
    let summary = summarize(&hist, lost, cfg.warmup.min(seq), measured_start.elapsed());
    Ok(PingResult {
        histogram: hist,
        samples_ns: samples,
        summary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_ping_pong_in_every_mode() {
        let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = probe.local_addr().unwrap();
        drop(probe);
        let r = start_responder(None, addr, false).unwrap();
        for mode in [Mode::Blocking, Mode::Spin, Mode::Paced] {
            let cfg = PingConfig {
                count: 200,
                warmup: 20,
                mode,
                interval: Duration::from_micros(100),
                keep_samples: true,
                ..Default::default()
            };
            let res = ping(addr, &cfg).unwrap();
            assert_eq!(res.summary.count, 200, "{mode:?}");
            assert_eq!(res.samples_ns.len(), 200);
            assert!(res.summary.p50_us > 0.0 && res.summary.p50_us <= res.summary.p99_us);
            assert_eq!(res.summary.warmup_discarded, 20);
        }
        assert!(r.stop().unwrap() >= 660);
    }

    #[test]
    fn kernel_receive_timestamps_cut_the_wakeup() {
        let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = probe.local_addr().unwrap();
        drop(probe);
        let r = start_responder(None, addr, false).unwrap();
        let cfg = PingConfig {
            count: 500,
            warmup: 50,
            kernel_rx_timestamps: true,
            ..Default::default()
        };
        let k = ping(addr, &cfg).unwrap();
        assert_eq!(k.summary.count, 500);
        assert!(k.summary.p50_us > 0.0);
        let spin = PingConfig {
            mode: Mode::Spin,
            ..cfg
        };
        assert!(ping(addr, &spin).is_err());
        r.stop().unwrap();
    }

    #[test]
    fn tcp_request_response() {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = probe.local_addr().unwrap();
        drop(probe);
        let r = start_responder_proto(None, addr, false, Proto::Tcp).unwrap();
        let cfg = PingConfig {
            count: 300,
            warmup: 30,
            proto: Proto::Tcp,
            payload: 64,
            ..Default::default()
        };
        let res = ping(addr, &cfg).unwrap();
        assert_eq!(res.summary.count, 300);
        assert!(res.summary.p50_us > 0.0);
        assert_eq!(r.stop().unwrap(), 330);
    }

    #[test]
    fn an_absent_responder_is_reported_not_waited_for() {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = s.local_addr().unwrap();
        drop(s);
        let cfg = PingConfig {
            count: 1_000_000,
            warmup: 0,
            probe_timeout: Duration::from_millis(20),
            ..Default::default()
        };
        let start = Instant::now();
        let err = ping(addr, &cfg).err().unwrap();
        assert!(err.contains("did not answer 10 probes in a row"), "{err}");
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn counts_of_any_size_neither_overflow_nor_allocate_up_front() {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = s.local_addr().unwrap();
        drop(s);
        // Both near u64::MAX: their sum must not overflow, nor the samples be reserved.
        let cfg = PingConfig {
            count: u64::MAX,
            warmup: u64::MAX,
            keep_samples: true,
            probe_timeout: Duration::from_millis(5),
            max_consecutive_losses: 2,
            ..Default::default()
        };
        let err = ping(addr, &cfg).err().unwrap();
        assert!(err.contains("did not answer 2 probes in a row"), "{err}");
        let tcp = PingConfig {
            proto: Proto::Tcp,
            ..cfg.clone()
        };
        assert!(ping(addr, &tcp).is_err());
        // 2^40 rounds: an error at the first block, not 8 TiB reserved for the medians.
        let err = compare_peers(addr, addr, 1 << 40, &cfg).err().unwrap();
        assert!(err.starts_with("round 0, peer "), "{err}");
        assert_eq!(prealloc(u64::MAX), PREALLOC_MAX);
        assert_eq!(prealloc(3usize), 3);
    }

    #[test]
    fn a_port_in_use_is_a_clear_error() {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let err = start_responder(None, s.local_addr().unwrap(), false)
            .err()
            .unwrap();
        assert!(err.contains("cannot bind the responder"), "{err}");
    }
}

/// Paired block medians of two peers measured from one client: the in-cluster form of the
/// datapath area's method (see [`compare_peers`]).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PairedBlocks {
    /// The first peer.
    pub first: SocketAddr,
    /// The second peer.
    pub second: SocketAddr,
    /// Probes per block.
    pub block: u64,
    /// Per-round median RTT to the first peer, µs.
    pub first_p50_us: Vec<f64>,
    /// Per-round median RTT to the second peer, µs.
    pub second_p50_us: Vec<f64>,
    /// Probes lost, first and second.
    pub lost: [u64; 2],
    /// Per-round 99th percentile to the first peer, µs.
    #[serde(default)]
    pub first_p99_us: Vec<f64>,
    /// Per-round 99th percentile to the second peer, µs.
    #[serde(default)]
    pub second_p99_us: Vec<f64>,
    /// The first peer's RTT distribution over all rounds: quantiles 0, 0.01, ..., 1, µs.
    #[serde(default)]
    pub first_cdf_us: Vec<f64>,
    /// The same for the second peer.
    #[serde(default)]
    pub second_cdf_us: Vec<f64>,
}

/// Quantiles 0, 0.01, ..., 1 of an RTT histogram (nanoseconds), in µs: 101 points.
pub fn quantiles_us(h: &Histogram<u64>) -> Vec<f64> {
    (0..=100)
        .map(|i| h.value_at_quantile(f64::from(i) / 100.0) as f64 / 1000.0)
        .collect()
}

/// Measures `rounds` rounds of ABBA-interleaved blocks of `cfg.count` probes to two peers
/// (round r runs first then second when r is even, second then first when odd), so that drift
/// over time falls on both alike. Each block's median becomes one paired sample.
pub fn compare_peers(
    first: SocketAddr,
    second: SocketAddr,
    rounds: usize,
    cfg: &PingConfig,
) -> Result<PairedBlocks, String> {
    let mut out = PairedBlocks {
        first,
        second,
        block: cfg.count,
        first_p50_us: Vec::with_capacity(prealloc(rounds)),
        second_p50_us: Vec::with_capacity(prealloc(rounds)),
        lost: [0, 0],
        first_p99_us: Vec::with_capacity(prealloc(rounds)),
        second_p99_us: Vec::with_capacity(prealloc(rounds)),
        first_cdf_us: Vec::new(),
        second_cdf_us: Vec::new(),
    };
    let mut merged = [new_histogram(), new_histogram()];
    for r in 0..rounds {
        let order = if r % 2 == 0 { [0, 1] } else { [1, 0] };
        for which in order {
            let peer = if which == 0 { first } else { second };
            let res = ping(peer, cfg).map_err(|e| format!("round {r}, peer {peer}: {e}"))?;
            out.lost[which] = out.lost[which].saturating_add(res.summary.lost);
            merged[which]
                .add(&res.histogram)
                .map_err(|e| format!("merging the RTT histograms: {e}"))?;
            if which == 0 {
                out.first_p50_us.push(res.summary.p50_us);
                out.first_p99_us.push(res.summary.p99_us);
            } else {
                out.second_p50_us.push(res.summary.p50_us);
                out.second_p99_us.push(res.summary.p99_us);
            }
        }
    }
    out.first_cdf_us = quantiles_us(&merged[0]);
    out.second_cdf_us = quantiles_us(&merged[1]);
    Ok(out)
}
