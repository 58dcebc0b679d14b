use std::net::UdpSocket;
use std::time::Instant;

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
