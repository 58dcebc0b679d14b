use super::stream::Timeline;
use super::*;
use nfvi_harness::Status;

/// Probes every 20 ms over `secs`, unanswered inside the `silent` windows (ms).
fn timeline(secs: u64, silent: &[(u64, u64)]) -> Timeline {
    (0..secs * 50)
        .map(|i| {
            let ms = i * 20;
            let lost = silent.iter().any(|(a, b)| ms >= *a && ms < *b);
            (
                Duration::from_millis(ms),
                if lost {
                    Probe::Silent
                } else {
                    Probe::Answered(Duration::from_micros(300))
                },
            )
        })
        .collect()
}

#[test]
fn failover_is_the_longest_silence_around_each_deletion() {
    let ms = Duration::from_millis;
    let at = [ms(2000), ms(8000)];
    #[rustfmt::skip]
    let rows: Vec<(&str, Timeline, Vec<Duration>, Status, &str)> = vec![
        ("no silence", timeline(12, &[]), at.to_vec(), Status::Passed, "0.02 s at worst"),
        ("1.5 s then 0.4 s", timeline(12, &[(2100, 3600), (8000, 8400)]), at.to_vec(), Status::Passed, "1.52 s at worst"),
        ("6 s silence", timeline(16, &[(8000, 14000)]), at.to_vec(), Status::Failed, "took 6.02 s"),
        ("never again", timeline(12, &[(8000, 12000)]), at.to_vec(), Status::Failed, "did not answer again"),
        ("silent from the start", timeline(12, &[(0, 12000)]), at.to_vec(), Status::Error, "positive control"),
        ("no deletion", timeline(2, &[]), vec![], Status::Error, "no backend"),
    ];
    for (name, probes, dels, status, needle) in rows {
        let o = failover_judge(&probes, &dels, INTERVAL);
        assert_eq!(o.status, status, "{name}: {}", o.message);
        assert!(o.message.contains(needle), "{name}: {}", o.message);
    }
}

#[test]
fn the_external_address_is_judged_on_answers_and_only_lab_addresses_are_probed() {
    let peer: SocketAddr = "198.18.100.10:7777".parse().unwrap();
    assert_eq!(external(&timeline(1, &[]), peer).status, Status::Passed);
    let o = external(&timeline(1, &[(0, 1000)]), peer);
    assert_eq!(o.status, Status::Failed);
    assert!(
        o.message.contains("did not answer any of 50 probes"),
        "{}",
        o.message
    );
    assert_eq!(external(&[], peer).status, Status::Error);
    let lab = "198.18.0.0/15";
    // (address, loopback allowed, may probe)
    for (ip, allow, ok) in [
        ("198.18.100.10", false, true),
        ("198.19.255.1", false, true),
        // Loopback only for tests against a scripted API server.
        ("127.0.0.1", false, false),
        ("::1", false, false),
        ("127.0.0.1", true, true),
        ("::1", true, true),
        ("10.0.0.1", true, false),
        ("8.8.8.8", false, false),
        ("198.20.0.1", true, false),
    ] {
        assert_eq!(
            may_probe(ip.parse().unwrap(), lab, allow),
            ok,
            "{ip} allow_loopback={allow}"
        );
    }
    assert!(!may_probe("10.0.0.1".parse().unwrap(), "garbage", true));
}

/// Three answers per probe: answered, silent, not sent. A probe not sent is an error of
/// both judges, never a failure.
#[test]
fn a_probe_that_could_not_be_sent_is_an_error_never_a_failure() {
    let peer: SocketAddr = "198.18.100.10:7777".parse().unwrap();
    let unreachable = std::io::Error::from_raw_os_error(101); // ENETUNREACH
    let refused = std::io::Error::from_raw_os_error(111); // ECONNREFUSED
    assert_eq!(Probe::of_send(Ok(8), peer), Probe::Silent);
    assert_eq!(Probe::of_send(Err(refused), peer), Probe::Silent);
    let p = Probe::of_send(Err(unreachable), peer);
    let Probe::NotSent(why) = &p else {
        panic!("{p:?}")
    };
    assert!(
        why.starts_with("could not send to 198.18.100.10:7777: Network is unreachable"),
        "{why}"
    );
    let mut unsent = timeline(1, &[(0, 1000)]);
    for e in unsent.iter_mut().skip(10) {
        e.1 = p.clone();
    }
    type Judge = fn(&Timeline) -> Outcome;
    let judges: [(&str, Judge); 2] = [
        ("external", |t| {
            external(t, "198.18.100.10:7777".parse().unwrap())
        }),
        ("failover", |t| {
            failover_judge(t, &[Duration::from_millis(200)], INTERVAL)
        }),
    ];
    for (name, judge) in judges {
        let o = judge(&unsent);
        assert_eq!(o.status, Status::Error, "{name}: {}", o.message);
        assert!(
            o.message.contains("could not send to 198.18.100.10:7777")
                && o.message.contains("(40 of 50 probes not sent)"),
            "{name}: {}",
            o.message
        );
    }
    // Silent but sent: the external judge fails.
    assert_eq!(
        external(&timeline(1, &[(0, 1000)]), peer).status,
        Status::Failed
    );
}

#[test]
fn no_external_address_is_a_failure() {
    let o = no_address("ns/nfvi-verify-lb", Duration::from_secs(120));
    assert_eq!(o.status, Status::Failed, "{}", o.message);
    assert!(
        o.message.starts_with("no load balancer assigned an external address to the LoadBalancer Service ns/nfvi-verify-lb within 120 s"),
        "{}",
        o.message
    );
    assert!(o.message.ends_with("nothing serves LoadBalancer Services"));
}

/// The stream and the prober's responder, on loopback: the positive control works.
#[test]
fn the_probe_stream_gets_answers_from_the_probers_responder_on_loopback() {
    control_on_loopback().unwrap();
}
