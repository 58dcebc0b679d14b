//! The cross-node data path of a fleet, `datapath.fleet.cross-node`: the prober serves on
//! two nodes and probes from the first, over the nodes' own network, with the area's ABBA
//! statistics.
//!
//! A check of the whole NFVI: it runs on the jump host after the nodes' agents and starts
//! `nfvi-verify` on the nodes through the run's transport ([`CheckContext::transport`],
//! [`Transport::spawn_agent`]). On node A, `probe serve --bind A:PORT` (the same-node
//! reference: A's own address, through A's own stack); on node B, `probe serve --bind
//! B:PORT`; then on node A, `probe compare A:PORT B:PORT --format json`, whose per-round
//! medians and p99s are judged as the in-cluster probes' are ([`crate::paired`]), with the
//! SLAs `fleet-same-node` and `fleet-cross-node`. The addresses are the nodes' inventory
//! addresses, the port a random one in 20000-60000. Every process's stop is registered
//! before it starts: closing its input ends it on the node.

use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, BufReader, Read};
use std::net::{IpAddr, SocketAddr};
use std::process::Child;
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::time::{Duration, Instant};

use nfvi_harness::fleet::{FleetReport, NodeSpec, Transport};
use nfvi_harness::outcome::CommandRecord;
use nfvi_harness::panics::{self, Panic};
use nfvi_harness::{CheckContext, CheckMeta, CheckResult, Declared, Outcome, Severity, declare};
use nfvi_prober::stats;
use nfvi_reference_model::Area;

use crate::DatapathConfig;
use crate::paired::{PairedPaths, judge_paired, parse_paired};

/// The check's ID.
pub(crate) const ID: &str = "datapath.fleet.cross-node";

/// The responders' ports are drawn from here.
const PORTS: (u16, u16) = (20_000, 60_000);
/// A responder whose port is taken is started again on another, this many times in all.
const BIND_ATTEMPTS: usize = 3;
/// How long a responder may take to listen, copying the agent to its node included.
const START_TIMEOUT: Duration = Duration::from_secs(180);
/// How long a process whose input closed gets to end before its local process is killed.
const STOP_GRACE: Duration = Duration::from_secs(15);
/// Everything the check does, within its declared timeout.
const OVERALL: Duration = Duration::from_secs(560);
/// Probes per block and warm-up probes per block at most: the comparison takes seconds.
const MAX_BLOCK: u64 = 5_000;
const MAX_WARMUP: u64 = 500;
/// What `probe serve` says on standard error once it listens.
const LISTENING: &str = "nfvi-verify probe: echoing";
/// Lines of standard error kept per process, and bytes of standard output.
const STDERR_LINES: usize = 40;
const STDOUT_CAP: u64 = 1 << 20;

/// The check, declared.
pub(crate) fn declared() -> Declared {
    declare(
        CheckMeta::new(
            ID,
            Area::Datapath,
            "Round-trip latency between two nodes over their own network, against the same node, measured with interleaved blocks",
        )
        .subject("fleet")
        .covers(Severity::Should, &[])
        .side_effects(
            "starts `nfvi-verify probe serve` (a UDP echo responder on a random port in 20000-60000 at the node's inventory address) on two nodes of the fleet and `nfvi-verify probe compare` on the first, through the run's transport (over ssh: a copied agent in a private /tmp directory of the node, or the installed one); UDP probes only between the two nodes' addresses",
            "closes each process's input, which stops it on its node (SIGTERM) and removes its copied agent, whatever the outcome (also on Ctrl-C); a local ssh client that does not end then is killed",
        )
        .timeout(Duration::from_secs(600)),
        |cx| Box::pin(async move { tokio::task::block_in_place(|| run(cx)) }),
    )
}

/// A node the check can use: verified, with an IP address to bind and probe.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Usable {
    pub(crate) node: NodeSpec,
    pub(crate) ip: IpAddr,
}

/// The first two verified nodes whose address is an IP address, or why there are not two.
pub(crate) fn pick(fleet: &FleetReport) -> Result<(Usable, Usable), String> {
    let (mut usable, mut unverified, mut no_ip) = (Vec::new(), 0, Vec::new());
    for n in &fleet.nodes {
        if !n.verified {
            unverified += 1;
            continue;
        }
        match n.node.address.as_deref().map(str::parse::<IpAddr>) {
            Some(Ok(ip)) => usable.push(Usable {
                node: n.node.clone(),
                ip,
            }),
            Some(Err(_)) => no_ip.push(format!(
                "{} ({})",
                n.node.name,
                n.node.address.as_deref().unwrap_or_default()
            )),
            None => no_ip.push(n.node.name.clone()),
        }
    }
    let total = fleet.nodes.len();
    let mut usable = usable.into_iter();
    match (usable.next(), usable.next()) {
        (Some(a), Some(b)) => Ok((a, b)),
        (first, _) => {
            let why_one = if first.is_some() {
                "1 qualifies"
            } else {
                "none qualifies"
            };
            let mut why = format!(
                "a cross-node path needs two verified nodes with an IP address; of the fleet's {total} node(s), {why_one}"
            );
            if unverified > 0 {
                why.push_str(&format!(", {unverified} could not be verified"));
            }
            if !no_ip.is_empty() {
                why.push_str(&format!(
                    ", {} have no IP address: {}",
                    no_ip.len(),
                    no_ip.join(", ")
                ));
            }
            Err(why)
        }
    }
}

/// A port in [`PORTS`], drawn anew for each run (and each retry).
fn random_port() -> u16 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    let span = u64::from(PORTS.1 - PORTS.0) + 1;
    PORTS.0 + u16::try_from(h.finish() % span).unwrap_or(0)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Closes the input of the process in `slot` (which ends its command on the node), waits
/// for it, and kills it when it does not end in time. The cleanup of every process.
fn stop(slot: &Mutex<Option<Child>>) -> Result<(), String> {
    let Some(mut child) = lock(slot).take() else {
        return Ok(());
    };
    drop(child.stdin.take());
    let deadline = Instant::now() + STOP_GRACE;
    while Instant::now() < deadline {
        if !matches!(child.try_wait(), Ok(None)) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = child.id();
    // Not yet reaped, so the PID is still this process's.
    let _ = child.kill();
    let _ = child.wait();
    Err(format!(
        "it did not end within {} s of its input closing; its local process (PID {pid}) was killed",
        STOP_GRACE.as_secs()
    ))
}

/// A process on a node: its output as it comes, and what it did, for the evidence.
struct Remote {
    node: String,
    command: String,
    slot: Arc<Mutex<Option<Child>>>,
    /// Standard error, line by line; disconnected at its end.
    lines: mpsc::Receiver<String>,
    tail: Arc<Mutex<VecDeque<String>>>,
    stdout: mpsc::Receiver<String>,
    started: Instant,
    ended: Option<(Option<i32>, Duration)>,
    output: String,
}

impl Remote {
    /// Starts `nfvi-verify ARGS` on `node`, its stop registered first.
    fn start(
        cx: &CheckContext,
        t: &dyn Transport,
        node: &NodeSpec,
        args: Vec<String>,
    ) -> Result<Self, String> {
        let command = format!("nfvi-verify {}", args.join(" "));
        let slot: Arc<Mutex<Option<Child>>> = Arc::default();
        {
            let slot = slot.clone();
            cx.on_cleanup(format!("stop `{command}` on {}", node.name), move || {
                stop(&slot)
            });
        }
        let mut child = t
            .spawn_agent(node, &args, cx.cancel())
            .map_err(|e| format!("cannot start `{command}` on {}: {e}", node.name))?;
        let (out, err) = (child.stdout.take(), child.stderr.take());
        *lock(&slot) = Some(child);
        let (line_tx, lines) = mpsc::channel();
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        // The readers' handles are not kept: a reader's panic is caught on its thread and
        // becomes the last line of the process's error output, which the errors quote.
        let keep_panic = |tail: &Mutex<VecDeque<String>>, what: &str, p: Panic| {
            let mut tail = lock(tail);
            if tail.len() == STDERR_LINES {
                tail.pop_front();
            }
            tail.push_back(format!("(nfvi-verify's reader of its {what} panicked {p})"));
        };
        if let Some(err) = err {
            let tail = tail.clone();
            std::thread::spawn(move || {
                let read = panics::catch(|| {
                    for line in BufReader::new(err).lines() {
                        let Ok(line) = line else { break };
                        let line = nfvi_harness::truncate_chars(line.trim_end(), 1000);
                        {
                            let mut tail = lock(&tail);
                            if tail.len() == STDERR_LINES {
                                tail.pop_front();
                            }
                            tail.push_back(line.clone());
                        }
                        let _ = line_tx.send(line);
                    }
                });
                if let Err(p) = read {
                    keep_panic(&tail, "error output", p);
                }
            });
        }
        let (out_tx, stdout) = mpsc::channel();
        if let Some(out) = out {
            let tail = tail.clone();
            std::thread::spawn(move || {
                let read = panics::catch(|| {
                    let mut bytes = Vec::new();
                    let _ = out.take(STDOUT_CAP).read_to_end(&mut bytes);
                    let _ = out_tx.send(String::from_utf8_lossy(&bytes).into_owned());
                });
                if let Err(p) = read {
                    keep_panic(&tail, "output", p);
                }
            });
        }
        Ok(Self {
            node: node.name.clone(),
            command,
            slot,
            lines,
            tail,
            stdout,
            started: Instant::now(),
            ended: None,
            output: String::new(),
        })
    }

    /// The last line of standard error that says something, for messages.
    fn last_words(&self) -> String {
        lock(&self.tail)
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map_or_else(|| "no error output".to_owned(), |l| l.trim().to_owned())
    }

    /// Whether the process ended; once it has, its exit code and output are kept.
    fn poll(&mut self) -> bool {
        if self.ended.is_some() {
            return true;
        }
        let code = {
            let mut slot = lock(&self.slot);
            let Some(child) = slot.as_mut() else {
                return false;
            };
            match child.try_wait() {
                Ok(None) => return false,
                Ok(Some(status)) => status.code(),
                Err(_) => None,
            }
        };
        lock(&self.slot).take();
        self.ended = Some((code, self.started.elapsed()));
        // Its output ends with it (nothing else holds the pipes); not waited for long.
        self.output = self
            .stdout
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_default();
        let until = Instant::now() + Duration::from_secs(2);
        while Instant::now() < until {
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                _ => continue,
            }
        }
        true
    }

    /// "exit N" or "killed by a signal", once it ended.
    fn exit_words(&self) -> String {
        match self.ended {
            Some((Some(code), _)) => format!("exit {code}"),
            Some((None, _)) => "killed by a signal".to_owned(),
            None => "still running".to_owned(),
        }
    }

    /// Waits until the process says it listens; an error naming the node and why when it
    /// ends first, or `deadline` passes, or the run is cancelled.
    fn await_listening(&mut self, cx: &CheckContext, deadline: Instant) -> Result<(), String> {
        loop {
            if cx.cancel().is_cancelled() {
                return Err(format!(
                    "stopped: the run was cancelled while `{}` started on {}",
                    self.command, self.node
                ));
            }
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) if line.contains(LISTENING) => return Ok(()),
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {}
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "`{}` on {} did not listen within {} s: {}",
                        self.command,
                        self.node,
                        START_TIMEOUT.as_secs(),
                        self.last_words()
                    ));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let until = Instant::now() + Duration::from_secs(5);
                    while !self.poll() && Instant::now() < until {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    return Err(format!(
                        "`{}` on {} ended before it listened ({}): {}",
                        self.command,
                        self.node,
                        self.exit_words(),
                        self.last_words()
                    ));
                }
            }
        }
    }

    /// Waits for the process to end by itself; an error when `deadline` passes or the run
    /// is cancelled (the process is then stopped).
    fn await_end(&mut self, cx: &CheckContext, deadline: Instant) -> Result<(), String> {
        while !self.poll() {
            let why = if cx.cancel().is_cancelled() {
                "the run was cancelled"
            } else if Instant::now() >= deadline {
                "it ran past its time"
            } else {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            };
            self.finish();
            return Err(format!(
                "stopped `{}` on {}: {why}",
                self.command, self.node
            ));
        }
        Ok(())
    }

    /// Closes the process's input, which ends its command on the node, and waits a while
    /// for it; one that does not end is left to its cleanup, which kills it and says so.
    fn finish(&mut self) {
        if let Some(child) = lock(&self.slot).as_mut() {
            drop(child.stdin.take());
        }
        let until = Instant::now() + STOP_GRACE;
        while !self.poll() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The process as evidence.
    fn record(&self) -> CommandRecord {
        CommandRecord {
            command: format!("on {}: {}", self.node, self.command),
            exit_code: self.ended.and_then(|(code, _)| code),
            stdout: nfvi_harness::truncate_chars(&self.output, 16_000),
            stderr: lock(&self.tail)
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join("\n"),
            duration_secs: self
                .ended
                .map_or_else(|| self.started.elapsed(), |(_, d)| d)
                .as_secs_f64(),
        }
    }
}

/// Starts a responder on `node` at `ip` and waits until it listens; a port that is taken
/// is replaced by another. Returns its address.
fn responder(
    cx: &CheckContext,
    t: &dyn Transport,
    node: &NodeSpec,
    ip: IpAddr,
    first_port: u16,
    deadline: Instant,
    remotes: &mut Vec<Remote>,
) -> Result<SocketAddr, String> {
    let mut port = first_port;
    for attempt in 1..=BIND_ATTEMPTS {
        let bind = SocketAddr::new(ip, port);
        let args = ["probe", "serve", "--bind", &bind.to_string()].map(str::to_owned);
        remotes.push(Remote::start(cx, t, node, args.to_vec())?);
        let r = remotes.last_mut().ok_or("no process")?;
        match r.await_listening(cx, deadline.min(Instant::now() + START_TIMEOUT)) {
            Ok(()) => return Ok(bind),
            Err(e) if attempt < BIND_ATTEMPTS && r.last_words().contains("cannot bind") => {
                tracing::debug!(node = %node.name, "{e}; another port");
                port = random_port();
            }
            Err(e) => return Err(e),
        }
    }
    Err(format!(
        "no free port for a responder on {} after {BIND_ATTEMPTS} attempts",
        node.name
    ))
}

/// The measurement proper; every process it starts is in `remotes`.
fn measure(
    cx: &CheckContext,
    t: &dyn Transport,
    a: &Usable,
    b: &Usable,
    remotes: &mut Vec<Remote>,
) -> Result<Outcome, String> {
    let dp = cx.target().config::<DatapathConfig>();
    let deadline = Instant::now() + OVERALL;
    let port = random_port();
    let same = responder(cx, t, &a.node, a.ip, port, deadline, remotes)?;
    let cross = responder(cx, t, &b.node, b.ip, port, deadline, remotes)?;
    let rounds = dp.rounds.max(2);
    let block = dp.block_probes.min(MAX_BLOCK);
    let warmup = dp.warmup.min(MAX_WARMUP);
    let args: Vec<String> = [
        "probe",
        "compare",
        &same.to_string(),
        &cross.to_string(),
        "--rounds",
        &rounds.to_string(),
        "--block",
        &block.to_string(),
        "--warmup",
        &warmup.to_string(),
        "--mode",
        &dp.mode,
        "--format",
        "json",
    ]
    .map(str::to_owned)
    .to_vec();
    remotes.push(Remote::start(cx, t, &a.node, args)?);
    let client = remotes.last_mut().ok_or("no process")?;
    // Generous: 500 µs a probe, both paths, every round, and the start (a copy included).
    let probes = u64::from(rounds) * 2 * (block + warmup);
    let budget = START_TIMEOUT + Duration::from_micros(probes.saturating_mul(500));
    client.await_end(cx, deadline.min(Instant::now() + budget))?;
    if client.ended.and_then(|(code, _)| code) != Some(0) {
        return Err(format!(
            "the probe client on {} failed ({}): {}",
            a.node.name,
            client.exit_words(),
            client.last_words()
        ));
    }
    let paired = parse_paired(&client.output).map_err(|e| format!("on {}: {e}", a.node.name))?;
    let sla = &dp.sla;
    let nodes = format!(
        "{} ({}): probe client and same-node responder; {} ({}): cross-node responder",
        a.node.name, a.ip, b.node.name, b.ip
    );
    let responders = format!("{same} (same node), {cross} (cross node)");
    let method = format!(
        "{rounds} rounds of interleaved blocks (ABBA order) to both responders from {}, {block} probes per block after {warmup} warm-up, {} mode (responders blocking); per-round p50 and p99; Hodges-Lehmann estimate of same - cross over paired rounds with a 95% percentile bootstrap interval",
        a.node.name, dp.mode
    );
    let paths = PairedPaths {
        what: "node-to-node",
        a: &a.node.name,
        b: &b.node.name,
        sla: ["fleet-same-node", "fleet-cross-node"],
        properties: &[
            ("nodes", &nodes),
            ("responders", &responders),
            ("method", &method),
        ],
    };
    let mut o = judge_paired(
        &paired,
        &paths,
        [sla.get("fleet-same-node"), sla.get("fleet-cross-node")],
    );
    for (name, p99s) in [
        ("same-node p99", &paired.first_p99_us),
        ("cross-node p99", &paired.second_p99_us),
    ] {
        if !p99s.is_empty() {
            o = o.with_metric(name, stats::median(p99s), "us");
        }
    }
    Ok(o)
}

/// Runs the check: not applicable without a fleet of two usable nodes, otherwise the
/// measurement, with every process it started as evidence.
fn run(cx: &CheckContext) -> CheckResult {
    let Some(fleet) = cx.fleet() else {
        return Ok(Outcome::not_applicable(
            "the run verifies no fleet (no --inventory or fleet.inventory): there is no second node to measure a cross-node path to",
        ));
    };
    let Some(t) = cx.transport().filter(|t| t.can_spawn_agent()) else {
        let kind = cx.transport().map_or("no transport", |t| t.kind());
        return Ok(Outcome::not_applicable(format!(
            "the run reaches its nodes over {kind}, which cannot start processes on them (the in-cluster probes measure pod-to-pod paths there)"
        )));
    };
    let (a, b) = match pick(fleet) {
        Ok(pair) => pair,
        Err(why) => return Ok(Outcome::not_applicable(why)),
    };
    let mut remotes = Vec::new();
    let measured = measure(cx, t.as_ref(), &a, &b, &mut remotes);
    // The responders (and anything the measurement left) stop here, so that what they
    // said is evidence; the cleanups then find nothing left, or kill what did not stop.
    for r in &mut remotes {
        r.finish();
    }
    let mut o = measured.unwrap_or_else(Outcome::error);
    o = o.with_property("transport", t.kind());
    o.evidence
        .commands
        .extend(remotes.iter().map(Remote::record));
    Ok(o)
}

#[cfg(test)]
#[path = "cross_node_tests.rs"]
mod tests;
