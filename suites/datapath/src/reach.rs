//! Reachability, observed and judged apart. The probe runs on nfvi-verify's own thread
//! entered into the source namespace (no tool, image or capability of the endpoint is
//! involved) and says what it saw: an answer, silence, or that the datagram could not be
//! sent at all. Only silence after a sent datagram is evidence of unreachability, and only
//! when a positive control through the same probe, from the same namespace, in the same run,
//! was answered: a probe that could not be sent, or a control that went unanswered, is an
//! error, never "unreachable".

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::time::Duration;

use nfvi_harness::Outcome;
use nfvi_prober::probe;

use crate::ns::Netns;

/// The UDP port of the echo responders.
pub(crate) const PORT: u16 = 17_007;

/// Datagrams sent before calling a destination silent: room for one ARP retry (1 s).
const ATTEMPTS: u64 = 6;
const WAIT: Duration = Duration::from_millis(300);

/// What one reachability probe observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Reach {
    /// The responder echoed a datagram back.
    Answered,
    /// Datagrams left the socket and nothing came back (or the kernel reported the
    /// neighbour unresolvable, `EHOSTUNREACH`): the destination did not answer.
    Silent,
    /// Nothing could be observed: no socket, no route, no address, `setns` failed, or a send
    /// was refused locally. The reason says which.
    NotSent(String),
}

impl Reach {
    fn word(&self) -> &'static str {
        match self {
            Reach::Answered => "reachable",
            Reach::Silent => "unreachable",
            Reach::NotSent(_) => "not probed",
        }
    }
}

/// A probe from `src` (a namespace) to `dst_ip`, answered by an echo responder the harness
/// starts in `dst`. A responder that cannot start is an error of the harness (`Err`).
pub(crate) fn probe(src: &Netns, dst: &Netns, dst_ip: Ipv4Addr) -> Result<Reach, String> {
    let addr = SocketAddr::V4(SocketAddrV4::new(dst_ip, PORT));
    let responder = probe::start_responder(Some(&dst.path()), addr, false)?;
    let seen = crate::ns::run_in(&src.path(), move || Ok(send_and_listen(addr)))
        .unwrap_or_else(|e| Reach::NotSent(format!("cannot enter the source namespace: {e}")));
    responder.stop()?;
    Ok(seen)
}

/// Sends numbered datagrams to `addr` from the calling thread's namespace and waits for one
/// to come back.
fn send_and_listen(addr: SocketAddr) -> Reach {
    let not_sent = |what: &str, e: std::io::Error| Reach::NotSent(format!("{what}: {e}"));
    let socket = match UdpSocket::bind("0.0.0.0:0") {
        Ok(s) => s,
        Err(e) => return not_sent("cannot open a UDP socket", e),
    };
    if let Err(e) = socket.connect(addr) {
        return not_sent(&format!("no route to {addr}"), e);
    }
    if let Err(e) = socket.set_read_timeout(Some(WAIT)) {
        return not_sent("cannot set a receive timeout", e);
    }
    let mut buf = [0u8; 64];
    for seq in 0..ATTEMPTS {
        if let Err(e) = socket.send(&seq.to_le_bytes()) {
            if unreachable_neighbour(&e) {
                return Reach::Silent;
            }
            return not_sent(&format!("cannot send to {addr}"), e);
        }
        loop {
            match socket.recv(&mut buf) {
                Ok(n) if n >= 8 => return Reach::Answered,
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    break;
                }
                // An ICMP port unreachable is an answer from the destination's host.
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => return Reach::Answered,
                Err(e) if unreachable_neighbour(&e) => return Reach::Silent,
                Err(e) => return not_sent(&format!("cannot receive from {addr}"), e),
            }
        }
    }
    Reach::Silent
}

/// `EHOSTUNREACH`: the kernel sent ARP and nobody answered, an observation of the path.
fn unreachable_neighbour(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(nix::errno::Errno::EHOSTUNREACH as i32)
}

/// A path expected to be reachable: an answer passes, silence fails, and a probe that could
/// not be sent is an error.
pub(crate) fn judge_reachable(what: &str, seen: &Reach) -> Outcome {
    let o = match seen {
        Reach::Answered => Outcome::pass(format!("{what}: reachable as expected")),
        Reach::Silent => Outcome::fail(format!("{what}: expected reachable, observed unreachable")),
        Reach::NotSent(why) => Outcome::error(format!(
            "{what}: the probe could not be sent, so nothing was observed: {why}"
        )),
    };
    o.with_property("expected", "reachable")
        .with_property("observed", seen.word())
}

/// One positive control of an isolation check: a probe that must be answered.
#[derive(Clone, Debug)]
pub(crate) struct Control {
    /// What it probed, for the message.
    pub(crate) what: String,
    pub(crate) seen: Reach,
}

/// A path expected to be unreachable. Silence counts only when every control (the same
/// probe from the same source to something that must answer, and to the destination's
/// responder from its own side) was answered; otherwise the silence proves nothing and the
/// outcome is an error. An answer on the isolated path fails.
pub(crate) fn judge_isolated(what: &str, seen: &Reach, controls: &[Control]) -> Outcome {
    let with = |o: Outcome| {
        let mut o = o
            .with_property("expected", "unreachable")
            .with_property("observed", seen.word());
        for c in controls {
            o = o.with_property(format!("control: {}", c.what), c.seen.word());
        }
        o
    };
    if controls.is_empty() {
        return with(Outcome::error(format!(
            "{what}: no positive control was run, so silence would prove nothing"
        )));
    }
    for c in controls {
        match &c.seen {
            Reach::Answered => {}
            Reach::Silent => {
                return with(Outcome::error(format!(
                    "{what}: the positive control {} was not answered, so the probe path cannot observe anything and the silence proves nothing",
                    c.what
                )));
            }
            Reach::NotSent(why) => {
                return with(Outcome::error(format!(
                    "{what}: the positive control {} could not be sent ({why}), so nothing was observed",
                    c.what
                )));
            }
        }
    }
    with(match seen {
        Reach::Answered => {
            Outcome::fail(format!("{what}: expected unreachable, observed reachable"))
        }
        Reach::Silent => Outcome::pass(format!(
            "{what}: unreachable as expected, while {} answered",
            controls
                .iter()
                .map(|c| c.what.as_str())
                .collect::<Vec<_>>()
                .join(" and ")
        )),
        Reach::NotSent(why) => Outcome::error(format!(
            "{what}: the probe could not be sent, so nothing was observed: {why}"
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nfvi_harness::Status;

    fn control(seen: Reach) -> Control {
        Control {
            what: "a -> b".to_owned(),
            seen,
        }
    }

    fn not_sent() -> Reach {
        Reach::NotSent("no route to 198.18.60.3:17007: Network is unreachable".to_owned())
    }

    #[test]
    fn isolation_passes_only_on_silence_next_to_an_answered_control() {
        use Reach::{Answered, Silent};
        #[rustfmt::skip]
        let rows: &[(&str, Reach, Vec<Control>, Status, &str)] = &[
            ("isolated", Silent, vec![control(Answered)], Status::Passed, "unreachable as expected, while a -> b answered"),
            ("leaks", Answered, vec![control(Answered)], Status::Failed, "expected unreachable, observed reachable"),
            ("control failed", Silent, vec![control(Silent)], Status::Error, "the positive control a -> b was not answered"),
            ("control not sent", Silent, vec![control(not_sent())], Status::Error, "could not be sent (no route"),
            ("nothing observed", not_sent(), vec![control(Answered)], Status::Error, "the probe could not be sent"),
            ("nothing observed, no control", not_sent(), vec![], Status::Error, "no positive control"),
            ("no control", Silent, vec![], Status::Error, "no positive control"),
            ("second control failed", Silent, vec![control(Answered), control(Silent)], Status::Error, "was not answered"),
        ];
        for (name, seen, controls, status, part) in rows {
            let o = judge_isolated("x", seen, controls);
            assert_eq!(o.status, *status, "{name}: {}", o.message);
            assert!(o.message.contains(part), "{name}: {}", o.message);
        }
    }

    #[test]
    fn reachability_errors_when_nothing_was_sent() {
        let rows = [
            (Reach::Answered, Status::Passed),
            (Reach::Silent, Status::Failed),
            (not_sent(), Status::Error),
        ];
        for (seen, status) in rows {
            assert_eq!(judge_reachable("x", &seen).status, status, "{seen:?}");
        }
    }
}

/// The probe against real namespaces (root): with its path intact it sees an answer and a
/// silence; with the path removed (no address, no route in the source namespace) it reports
/// that nothing was sent, and no isolation check passes on it.
#[cfg(test)]
mod against_the_kernel {
    use super::*;
    use nfvi_harness::Status;

    fn prerequisites() -> bool {
        let root = nfvi_net::run_in(std::path::Path::new("/proc/self/ns/net"), || ()).is_ok();
        if root {
            return true;
        }
        assert!(
            std::env::var_os("CI").is_none(),
            "prerequisite missing under CI: root"
        );
        eprintln!("SKIPPED: needs root to create network namespaces");
        false
    }

    /// A namespace (prefix `nfvdr`, this process's PID in the name) deleted on drop.
    struct Ns(Netns);
    impl Drop for Ns {
        fn drop(&mut self) {
            let _ = crate::ns::delete(&self.0.name);
        }
    }
    fn namespace(role: &str) -> Ns {
        let name = nfvi_net::unique(&format!("nfvdr{role}-"));
        let ns = Ns(crate::ns::create(&name).unwrap());
        crate::nl::within(&ns.0, |h| async move { crate::nl::up(&h, "lo").await }).unwrap();
        ns
    }

    #[test]
    fn a_source_without_address_or_route_observes_nothing_and_nothing_passes() {
        if !prerequisites() {
            return;
        }
        // a and b on one veth (198.18.62.1/24 and .2); c reachable by nobody (another veth,
        // no peer address); bare has only `lo`: no address, no route.
        let (a, b, c, bare) = (
            namespace("a"),
            namespace("b"),
            namespace("c"),
            namespace("x"),
        );
        let (ip_a, ip_b, ip_c) = (
            Ipv4Addr::new(198, 18, 62, 1),
            Ipv4Addr::new(198, 18, 62, 2),
            Ipv4Addr::new(198, 18, 62, 3),
        );
        let b_ns = b.0.clone();
        crate::nl::within(&a.0, move |h| async move {
            crate::nl::veth(&h, "eth0", "peer0").await?;
            crate::nl::move_to(&h, "peer0", &b_ns).await?;
            crate::nl::addr(&h, "eth0", ip_a, 24).await?;
            crate::nl::up(&h, "eth0").await
        })
        .unwrap();
        crate::nl::within(&b.0, move |h| async move {
            crate::nl::addr(&h, "peer0", ip_b, 24).await?;
            crate::nl::up(&h, "peer0").await
        })
        .unwrap();
        crate::nl::within(&c.0, move |h| async move {
            crate::nl::veth(&h, "eth0", "peer1").await?;
            crate::nl::addr(&h, "eth0", ip_c, 24).await?;
            crate::nl::up(&h, "eth0").await?;
            crate::nl::up(&h, "peer1").await
        })
        .unwrap();

        let answered = probe(&a.0, &b.0, ip_b).unwrap();
        assert_eq!(answered, Reach::Answered);
        let silent = probe(&a.0, &c.0, ip_c).unwrap();
        assert_eq!(silent, Reach::Silent);
        let ok = judge_isolated(
            "a -> c",
            &silent,
            &[Control {
                what: "a -> b".into(),
                seen: answered,
            }],
        );
        assert_eq!(ok.status, Status::Passed, "{}", ok.message);

        // The probe path removed: from a namespace with no address and no route.
        let blind = probe(&bare.0, &c.0, ip_c).unwrap();
        assert!(
            matches!(&blind, Reach::NotSent(why) if why.contains("no route")),
            "{blind:?}"
        );
        let control = probe(&bare.0, &b.0, ip_b).unwrap();
        let o = judge_isolated(
            "bare -> c",
            &blind,
            &[Control {
                what: "bare -> b".into(),
                seen: control,
            }],
        );
        assert_eq!(o.status, Status::Error, "{}", o.message);
        // A source whose probe is sent but whose control goes unanswered: not a pass either.
        let o = judge_isolated(
            "c -> b",
            &probe(&c.0, &b.0, ip_b).unwrap(),
            &[Control {
                what: "c -> a".into(),
                seen: probe(&c.0, &a.0, ip_a).unwrap(),
            }],
        );
        assert_eq!(o.status, Status::Error, "{}", o.message);
    }
}
