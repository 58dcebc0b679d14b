//! The UDP probe stream from this machine to the Service's external address, what became of
//! each probe, and the positive control of the stream on loopback.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::INTERVAL;
use super::judge::not_sent;

/// The prober on loopback: the prober crate's echo responder and the same stream.
pub(super) fn control_on_loopback() -> Result<(), String> {
    let sock = UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("bind 127.0.0.1: {e}"))?;
    let addr = sock.local_addr().map_err(|e| e.to_string())?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let responder = std::thread::spawn(move || nfvi_prober::probe::serve(&sock, &flag, false));
    let stream = Stream::start(addr)?;
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until && !stream.answered() {
        std::thread::sleep(INTERVAL);
    }
    let probes = stream.stop();
    stop.store(true, Ordering::Relaxed);
    let served = responder
        .join()
        .map_err(|_| "the loopback responder panicked".to_owned())?;
    if let Some(e) = not_sent(&probes) {
        return Err(e.message);
    }
    if probes.iter().any(|p| p.1.answered()) {
        Ok(())
    } else {
        Err(format!(
            "no reply from the prober's own responder on {addr} within 2 s ({} probes sent, {served:?} echoed): probes cannot be sent and received on this machine",
            probes.len()
        ))
    }
}

/// What became of one probe.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Probe {
    /// Answered after this round trip.
    Answered(Duration),
    /// Sent; no answer (yet).
    Silent,
    /// The socket refused to send it (no route to the address, for one): nothing was
    /// observed, so it is never counted as unanswered.
    NotSent(String),
}

impl Probe {
    pub(super) fn answered(&self) -> bool {
        matches!(self, Probe::Answered(_))
    }

    /// What a send's result makes of a probe to `peer`. ECONNREFUSED reports the ICMP port
    /// unreachable an earlier probe drew: the address answered that nothing listens there,
    /// which is the Service's silence, not the prober's fault.
    pub(super) fn of_send(r: std::io::Result<usize>, peer: SocketAddr) -> Self {
        match r {
            Ok(_) => Probe::Silent,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Probe::Silent,
            Err(e) => Probe::NotSent(format!("could not send to {peer}: {e}")),
        }
    }
}

/// Each probe's send time since the start of its stream, and what became of it.
pub(super) type Timeline = Vec<(Duration, Probe)>;

/// time of each since the start, and its RTT when answered.
pub(super) struct Stream {
    start: Instant,
    stop: Arc<AtomicBool>,
    seen: Arc<std::sync::Mutex<Timeline>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Stream {
    pub(super) fn start(peer: SocketAddr) -> Result<Self, String> {
        let bind: SocketAddr = if peer.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        }
        .parse()
        .expect("an address");
        let sock = UdpSocket::bind(bind).map_err(|e| format!("bind a UDP socket: {e}"))?;
        sock.connect(peer)
            .map_err(|e| format!("connect to {peer}: {e}"))?;
        sock.set_read_timeout(Some(Duration::from_millis(2)))
            .map_err(|e| e.to_string())?;
        let start = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let seen: Arc<std::sync::Mutex<Timeline>> = Arc::default();
        let (flag, log) = (stop.clone(), seen.clone());
        let handle = std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            let mut seq: u64 = 0;
            while !flag.load(Ordering::Relaxed) {
                let sent = start.elapsed();
                let probe = Probe::of_send(sock.send(&seq.to_be_bytes()), peer);
                if let Ok(mut l) = log.lock() {
                    l.push((sent, probe));
                }
                seq += 1;
                let next = start + sent + INTERVAL;
                while Instant::now() < next {
                    if let Ok(n) = sock.recv(&mut buf)
                        && n >= 8
                    {
                        let mut b = [0u8; 8];
                        b.copy_from_slice(&buf[..8]);
                        let s = u64::from_be_bytes(b) as usize;
                        if let Ok(mut l) = log.lock()
                            && let Some(entry) = l.get_mut(s)
                            && entry.1 == Probe::Silent
                        {
                            entry.1 = Probe::Answered(start.elapsed().saturating_sub(entry.0));
                        }
                    }
                }
            }
        });
        Ok(Self {
            start,
            stop,
            seen,
            handle: Some(handle),
        })
    }

    pub(super) fn now(&self) -> Duration {
        self.start.elapsed()
    }

    pub(super) fn answered(&self) -> bool {
        self.seen
            .lock()
            .is_ok_and(|l| l.iter().any(|p| p.1.answered()))
    }

    /// Waits until a probe sent after `after` is answered, at most `deadline`; returns when.
    pub(super) async fn wait_reply_after(
        &self,
        after: Duration,
        deadline: Duration,
    ) -> Option<Duration> {
        let until = Instant::now() + deadline;
        while Instant::now() < until {
            let hit = self.seen.lock().ok().and_then(|l| {
                l.iter()
                    .find(|p| p.0 >= after && p.1.answered())
                    .map(|p| p.0)
            });
            if hit.is_some() {
                return hit;
            }
            tokio::time::sleep(INTERVAL).await;
        }
        None
    }

    pub(super) fn stop(mut self) -> Timeline {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        self.seen.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
