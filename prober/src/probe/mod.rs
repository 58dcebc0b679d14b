//! The latency prober: a UDP echo responder and a client that keeps one message in flight,
//! matches replies by sequence number, times them with the monotonic clock and records them
//! in an HDR histogram. Blocking, busy-spin and paced modes. Every probe has a deadline and a
//! run stops after a streak of unanswered probes, so an unreachable peer never hangs it.

mod client;
mod responder;
mod summary;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

pub use client::{compare_peers, ping};
pub use responder::{
    Responder, pin_current_thread, serve, start_responder, start_responder_on,
    start_responder_proto,
};
pub use summary::{new_histogram, quantiles_us, summarize};

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
