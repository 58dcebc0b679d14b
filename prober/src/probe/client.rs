//! The client: UDP and TCP pings with one probe in flight, and paired ABBA block
//! comparisons of two peers.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use super::{Mode, PairedBlocks, PingConfig, PingResult, Proto, prealloc};
use super::{new_histogram, quantiles_us, summarize};

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
