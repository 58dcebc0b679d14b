//! Probes from the harness's own thread inside a container's network namespace
//! (`/proc/PID/ns/net`, entered with nfvi-net's namespace thread), never from tools inside
//! the image: results depend neither on the image nor on the capabilities the engine grants
//! the container (Podman's defaults omit NET_RAW).
//!
//! Reachability is an ICMP echo over a raw socket the harness opens in that namespace. A
//! probe that could not be sent (the namespace cannot be entered, no address or route, the
//! socket refused) is a [`ProbeError`], never "unreachable". Interface listings are netlink
//! reads in the namespace.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrIn, recvfrom, sendto,
    setsockopt, socket, sockopt,
};
use nix::sys::time::TimeVal;

/// Why a probe could not be sent; it observed nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// The harness's thread could not enter the namespace.
    #[error("cannot enter the network namespace {path}: {reason}")]
    Enter {
        /// `/proc/PID/ns/net`.
        path: PathBuf,
        /// The cause, rendered.
        reason: String,
    },
    /// No route to the target from the namespace (`connect` refused it).
    #[error("no route to {target} in the namespace: {reason}")]
    NoRoute {
        /// The target.
        target: Ipv4Addr,
        /// The cause, rendered.
        reason: String,
    },
    /// The route exists but the namespace has no IPv4 address to send from.
    #[error("no IPv4 address to send to {target} from in the namespace")]
    NoAddress {
        /// The target.
        target: Ipv4Addr,
    },
    /// The raw ICMP socket could not be opened or used.
    #[error("ICMP socket: {0}")]
    Socket(String),
    /// The kernel refused the echo request.
    #[error("sending the echo request to {target}: {reason}")]
    Send {
        /// The target.
        target: Ipv4Addr,
        /// The cause, rendered.
        reason: String,
    },
}

/// What an ICMP echo probe observed.
#[derive(Debug, Clone, PartialEq)]
pub struct Echo {
    /// The address probed.
    pub target: Ipv4Addr,
    /// The address the namespace sent from (the kernel's choice for the route).
    pub source: Ipv4Addr,
    /// Echo requests sent.
    pub sent: u32,
    /// Matching echo replies received.
    pub replies: u32,
    /// Round-trip time of the first reply.
    pub rtt: Option<Duration>,
    /// ICMP errors about our requests (`destination unreachable (type 3 code 1) from ...`).
    pub icmp_errors: Vec<String>,
    /// Requests the kernel refused with EHOSTUNREACH after the first went out: the
    /// neighbour never answered address resolution (an observation, not a failure to send).
    pub unresolved: u32,
}

impl Echo {
    /// Whether the target answered.
    pub fn answered(&self) -> bool {
        self.replies > 0
    }

    /// `3 sent from 198.18.200.3, 1 reply (0.1 ms)` and any ICMP errors.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} echo request(s) from {} to {}, {} reply(ies)",
            self.sent, self.source, self.target, self.replies
        );
        if let Some(rtt) = self.rtt {
            s.push_str(&format!(" (first after {:.2} ms)", rtt.as_secs_f64() * 1e3));
        }
        if self.unresolved > 0 {
            s.push_str(&format!(
                "; {} refused by the kernel as unresolved (no ARP answer)",
                self.unresolved
            ));
        }
        if !self.icmp_errors.is_empty() {
            s.push_str(&format!("; ICMP errors: {}", self.icmp_errors.join(", ")));
        }
        s
    }
}

/// How an echo probe paces itself.
#[derive(Debug, Clone, Copy)]
pub struct EchoPlan {
    /// Requests at most (it stops at the first reply).
    pub count: u32,
    /// Time between requests.
    pub interval: Duration,
    /// How long to wait for a reply after the last request.
    pub linger: Duration,
}

impl Default for EchoPlan {
    fn default() -> Self {
        Self {
            count: 3,
            interval: Duration::from_millis(300),
            linger: Duration::from_millis(1200),
        }
    }
}

/// A network namespace of a running container.
pub fn netns_of(pid: i64) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/ns/net"))
}

/// The namespace's identity (the nsfs inode `net:[N]` names), to tell namespaces apart.
pub fn netns_inode(path: &Path) -> Result<u64, String> {
    std::fs::metadata(path)
        .map(|m| m.ino())
        .map_err(|e| format!("cannot read the namespace {}: {e}", path.display()))
}

/// Sends ICMP echo requests to `target` from inside the namespace at `netns` and reports
/// what came back. Runs on a thread of its own; the caller's task does not block.
pub async fn echo(netns: PathBuf, target: Ipv4Addr, plan: EchoPlan) -> Result<Echo, ProbeError> {
    let path = netns.clone();
    match nfvi_net::in_netns(netns, move || echo_here(target, plan)).await {
        Ok(r) => r,
        Err(e) => Err(ProbeError::Enter {
            path,
            reason: nfvi_net::chain(&e),
        }),
    }
}

/// The identifier of the next probe: unique among this process's concurrent probes.
fn next_id() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    // The low bits of the PID keep two harnesses on one host apart as well.
    (std::process::id() as u16).wrapping_mul(257) ^ NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The source address the kernel picks for `target` here; no packet leaves.
fn route_source(target: Ipv4Addr) -> Result<Ipv4Addr, ProbeError> {
    let udp = UdpSocket::bind("0.0.0.0:0").map_err(|e| ProbeError::Socket(e.to_string()))?;
    udp.connect(SocketAddrV4::new(target, 9))
        .map_err(|e| ProbeError::NoRoute {
            target,
            reason: e.to_string(),
        })?;
    match udp.local_addr() {
        Ok(std::net::SocketAddr::V4(a)) if !a.ip().is_unspecified() => Ok(*a.ip()),
        Ok(_) => Err(ProbeError::NoAddress { target }),
        Err(e) => Err(ProbeError::Socket(e.to_string())),
    }
}

/// The probe itself, on a thread already inside the namespace.
fn echo_here(target: Ipv4Addr, plan: EchoPlan) -> Result<Echo, ProbeError> {
    let source = route_source(target)?;
    let fd = socket(
        AddressFamily::Inet,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::Icmp,
    )
    .map_err(|e| ProbeError::Socket(format!("opening a raw ICMP socket: {e}")))?;
    setsockopt(
        &fd,
        sockopt::ReceiveTimeout,
        &TimeVal::new(0, 50_000), // 50 ms: the receive loop re-checks its deadlines.
    )
    .map_err(|e| ProbeError::Socket(format!("SO_RCVTIMEO: {e}")))?;
    let id = next_id();
    let to = SockaddrIn::from(SocketAddrV4::new(target, 0));
    let mut echo = Echo {
        target,
        source,
        sent: 0,
        replies: 0,
        rtt: None,
        icmp_errors: Vec::new(),
        unresolved: 0,
    };
    let mut buf = [0u8; 1500];
    let mut first_sent: Option<Instant> = None;
    for seq in 1..=plan.count.max(1) {
        let request = echo_request(id, seq as u16);
        match sendto(fd.as_raw_fd(), &request, &to, MsgFlags::empty()) {
            Ok(_) => {
                echo.sent += 1;
                first_sent.get_or_insert_with(Instant::now);
            }
            // After a request went out, EHOSTUNREACH is the neighbour table saying nobody
            // answered ARP: observed. Before any went out it is a route that refuses.
            Err(Errno::EHOSTUNREACH) if echo.sent > 0 => echo.unresolved += 1,
            Err(e) => {
                if echo.sent == 0 {
                    return Err(ProbeError::Send {
                        target,
                        reason: e.to_string(),
                    });
                }
                echo.icmp_errors.push(format!("send refused: {e}"));
            }
        }
        let last = seq >= plan.count.max(1);
        let wait = if last { plan.linger } else { plan.interval };
        receive(
            &fd,
            &mut buf,
            id,
            &mut echo,
            first_sent,
            Instant::now() + wait,
        )?;
        if echo.answered() {
            break;
        }
    }
    Ok(echo)
}

fn receive(
    fd: &std::os::fd::OwnedFd,
    buf: &mut [u8],
    id: u16,
    echo: &mut Echo,
    first_sent: Option<Instant>,
    until: Instant,
) -> Result<(), ProbeError> {
    while Instant::now() < until {
        match recvfrom::<SockaddrIn>(fd.as_raw_fd(), buf) {
            Ok((n, _)) => match parse_icmp(&buf[..n.min(buf.len())], echo.target, id) {
                Some(Seen::Reply) => {
                    echo.replies += 1;
                    if echo.rtt.is_none() {
                        echo.rtt = first_sent.map(|t| t.elapsed());
                    }
                    return Ok(());
                }
                Some(Seen::Error { kind, code, from }) => {
                    echo.icmp_errors
                        .push(format!("{kind} (code {code}) from {from}"));
                }
                None => {}
            },
            Err(Errno::EAGAIN | Errno::EINTR) => {}
            Err(e) => return Err(ProbeError::Socket(format!("receiving: {e}"))),
        }
    }
    Ok(())
}

/// An ICMP echo request with our identifier and sequence number.
pub fn echo_request(id: u16, seq: u16) -> Vec<u8> {
    let mut p = vec![8u8, 0, 0, 0];
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(b"nfvi-verify docker probe");
    let sum = checksum(&p);
    p[2..4].copy_from_slice(&sum.to_be_bytes());
    p
}

/// The Internet checksum (RFC 1071).
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// What a received packet says about our probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// An echo reply from the target to our identifier.
    Reply,
    /// An ICMP error about one of our requests.
    Error {
        /// `destination unreachable`, `time exceeded`.
        kind: &'static str,
        /// The ICMP code.
        code: u8,
        /// Who sent it.
        from: Ipv4Addr,
    },
}

/// The IPv4 header's length and the ICMP message after it, when `packet` is IPv4 carrying
/// ICMP.
fn ipv4_icmp(packet: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr, &[u8])> {
    let first = *packet.first()?;
    let ihl = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || ihl < 20 || packet.len() < ihl || packet[9] != 1 {
        return None;
    }
    let src = Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
    let dst = Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]);
    Some((src, dst, &packet[ihl..]))
}

/// Reads a packet from a raw IPv4 ICMP socket (IP header included). Hostile or foreign input
/// gives `None`.
pub fn parse_icmp(packet: &[u8], target: Ipv4Addr, id: u16) -> Option<Seen> {
    let (src, _, icmp) = ipv4_icmp(packet)?;
    if icmp.len() < 8 {
        return None;
    }
    let ours = |m: &[u8]| m.len() >= 8 && m[0] == 8 && u16::from_be_bytes([m[4], m[5]]) == id;
    match icmp[0] {
        0 if src == target && u16::from_be_bytes([icmp[4], icmp[5]]) == id => Some(Seen::Reply),
        3 | 11 => {
            let (_, inner_dst, inner) = ipv4_icmp(&icmp[8..])?;
            (inner_dst == target && ours(inner)).then_some(Seen::Error {
                kind: if icmp[0] == 3 {
                    "destination unreachable"
                } else {
                    "time exceeded"
                },
                code: icmp[1],
                from: src,
            })
        }
        _ => None,
    }
}

/// Removes every address but loopback's from the namespace at `netns` (the test fault
/// [`Fault::NoAddress`]): a probe from there can then not be sent.
pub async fn drop_addresses(netns: PathBuf) -> Result<usize, String> {
    use futures_util::TryStreamExt;
    let shown = netns.display().to_string();
    nfvi_net::within_async(netns, |rtnl| async move {
        let lo = rtnl.index("lo").await.map_err(|e| nfvi_net::chain(&e))?;
        let h = rtnl.handle();
        let all: Vec<_> = h
            .address()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|e| format!("listing addresses: {e}"))?;
        let mut dropped = 0;
        for a in all.into_iter().filter(|a| a.header.index != lo) {
            h.address()
                .del(a)
                .execute()
                .await
                .map_err(|e| format!("deleting an address: {e}"))?;
            dropped += 1;
        }
        Ok(dropped)
    })
    .await
    .map_err(|e| format!("in {shown}: {}", nfvi_net::chain(&e)))?
}

/// Faults that take away a probe's ability to observe, for the tests that assert a check
/// then does not pass (env `NFVI_VERIFY_DOCKER_FAULT`; never set in a real run). They can
/// only turn an observation into "nothing observed", never forge one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `no-address`: the probing container's addresses are removed before it probes.
    NoAddress,
    /// `silent-control`: the positive control is aimed at a lab address nobody holds.
    SilentControl,
}

impl Fault {
    /// The fault the environment asks for, if any.
    pub fn from_env() -> Option<Self> {
        match std::env::var("NFVI_VERIFY_DOCKER_FAULT").ok()?.as_str() {
            "no-address" => Some(Self::NoAddress),
            "silent-control" => Some(Self::SilentControl),
            _ => None,
        }
    }
}

/// The names of the links in the namespace at `netns`, read over netlink from inside it.
pub async fn link_names(netns: PathBuf) -> Result<Vec<String>, String> {
    let shown = netns.display().to_string();
    nfvi_net::within_async(netns, |rtnl| async move { rtnl.links().await })
        .await
        .and_then(|r| r)
        .map(|links| links.into_iter().map(|l| l.name).collect())
        .map_err(|e| format!("listing links in {shown}: {}", nfvi_net::chain(&e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4(src: [u8; 4], dst: [u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0];
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(payload);
        p
    }

    const T: Ipv4Addr = Ipv4Addr::new(198, 18, 200, 3);

    fn reply(id: u16) -> Vec<u8> {
        let mut m = echo_request(id, 1);
        m[0] = 0;
        m
    }

    fn error(kind: u8, id: u16, to: [u8; 4]) -> Vec<u8> {
        let mut m = vec![kind, 1, 0, 0, 0, 0, 0, 0];
        m.extend(ipv4([198, 18, 200, 2], to, &echo_request(id, 1)));
        ipv4([198, 18, 200, 1], [198, 18, 200, 2], &m)
    }

    #[test]
    fn packets_are_read_as_replies_errors_or_nothing() {
        let gw = Ipv4Addr::new(198, 18, 200, 1);
        let table: Vec<(&str, Vec<u8>, Option<Seen>)> = vec![
            (
                "our reply",
                ipv4(T.octets(), [198, 18, 200, 2], &reply(7)),
                Some(Seen::Reply),
            ),
            (
                "another probe's reply",
                ipv4(T.octets(), [198, 18, 200, 2], &reply(8)),
                None,
            ),
            (
                "a reply from elsewhere",
                ipv4([198, 18, 200, 9], [198, 18, 200, 2], &reply(7)),
                None,
            ),
            (
                "an echo request",
                ipv4(T.octets(), [198, 18, 200, 2], &echo_request(7, 1)),
                None,
            ),
            (
                "unreachable about ours",
                error(3, 7, T.octets()),
                Some(Seen::Error {
                    kind: "destination unreachable",
                    code: 1,
                    from: gw,
                }),
            ),
            (
                "time exceeded about ours",
                error(11, 7, T.octets()),
                Some(Seen::Error {
                    kind: "time exceeded",
                    code: 1,
                    from: gw,
                }),
            ),
            (
                "unreachable about another id",
                error(3, 8, T.octets()),
                None,
            ),
            (
                "unreachable about another target",
                error(3, 7, [198, 18, 200, 9]),
                None,
            ),
            ("empty", vec![], None),
            ("one byte", vec![0x45], None),
            (
                "truncated header",
                vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1],
                None,
            ),
            (
                "IHL past the end",
                {
                    let mut p = ipv4(T.octets(), [1, 1, 1, 1], &reply(7));
                    p[0] = 0x4f;
                    p.truncate(40);
                    p
                },
                None,
            ),
            (
                "IHL below 20",
                {
                    let mut p = ipv4(T.octets(), [1, 1, 1, 1], &reply(7));
                    p[0] = 0x44;
                    p
                },
                None,
            ),
            (
                "IPv6 version nibble",
                {
                    let mut p = ipv4(T.octets(), [1, 1, 1, 1], &reply(7));
                    p[0] = 0x65;
                    p
                },
                None,
            ),
            (
                "UDP",
                {
                    let mut p = ipv4(T.octets(), [1, 1, 1, 1], &reply(7));
                    p[9] = 17;
                    p
                },
                None,
            ),
            (
                "short ICMP",
                ipv4(T.octets(), [1, 1, 1, 1], &[0, 0, 0]),
                None,
            ),
            (
                "error with a truncated inner packet",
                {
                    let mut p = error(3, 7, T.octets());
                    p.truncate(20 + 8 + 10);
                    p
                },
                None,
            ),
        ];
        for (what, packet, want) in table {
            assert_eq!(parse_icmp(&packet, T, 7), want, "{what}");
        }
    }

    #[test]
    fn the_checksum_of_a_request_verifies() {
        let r = echo_request(0x1234, 9);
        assert_eq!(checksum(&r), 0, "a message with its checksum sums to zero");
        assert_eq!(checksum(&[0xff]), !0xff00);
        assert_eq!(checksum(&[]), 0xffff);
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut x: u32 = 0x9e37_79b9;
        for len in 0..200 {
            let p: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            let _ = parse_icmp(&p, T, 7);
            let _ = checksum(&p);
        }
    }

    #[test]
    fn a_namespace_that_cannot_be_entered_is_an_error_not_silence() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let r = rt.block_on(echo(
            PathBuf::from("/proc/nfv-no-such/ns/net"),
            T,
            EchoPlan::default(),
        ));
        match r {
            Err(ProbeError::Enter { path, .. }) => {
                assert_eq!(path, PathBuf::from("/proc/nfv-no-such/ns/net"));
            }
            other => panic!("{other:?}"),
        }
    }
}
