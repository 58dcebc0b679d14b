//! `nfvi-verify probe` and `nfvi-verify lab`: the tools around a run, a latency probe and
//! the local lab, apart from the commands that plan, run and report.

use nfvi_harness::{Target, exit_code};

use crate::cli::{Format, ProbeCommand};
use crate::commands::print_json;
use crate::error::CliError;

type CmdResult = Result<i32, CliError>;

pub fn probe(cmd: &ProbeCommand) -> CmdResult {
    use nfvi_prober::probe;
    match cmd {
        ProbeCommand::Serve(args) => {
            let proto: probe::Proto = args.proto.parse().map_err(CliError::bad_input)?;
            let responder = probe::start_responder_proto(None, args.bind, args.spin, proto)
                .map_err(CliError::bad_input)?;
            eprintln!(
                "nfvi-verify probe: echoing UDP on {} ({}); Ctrl-C to stop",
                args.bind,
                if args.spin { "busy-spin" } else { "blocking" }
            );
            // Wait for SIGINT/SIGTERM on a small runtime, then stop the responder cleanly.
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| CliError::bad_input(e.to_string()))?;
            rt.block_on(async {
                use tokio::signal::unix::{SignalKind, signal};
                let (mut int, mut term) = (signal(SignalKind::interrupt()).ok(), signal(SignalKind::terminate()).ok());
                tokio::select! {
                    _ = async { if let Some(s) = int.as_mut() { s.recv().await; } else { std::future::pending::<()>().await } } => {}
                    _ = async { if let Some(s) = term.as_mut() { s.recv().await; } else { std::future::pending::<()>().await } } => {}
                }
            });
            let served = responder.stop().map_err(CliError::bad_input)?;
            eprintln!("nfvi-verify probe: echoed {served} messages");
            Ok(exit_code::CONFORMANT)
        }
        ProbeCommand::Compare(args) => {
            // --rounds, --block and --warmup are bounded by their value parsers (values.rs).
            let mode: probe::Mode = args.mode.parse().map_err(CliError::bad_input)?;
            let cfg = probe::PingConfig {
                count: args.block,
                warmup: args.warmup,
                mode,
                ..Default::default()
            };
            let paired = probe::compare_peers(args.first, args.second, args.rounds, &cfg)
                .map_err(CliError::Incomplete)?;
            if args.format == Format::Json {
                return print_json(
                    &serde_json::to_value(&paired)
                        .map_err(|e| CliError::Incomplete(e.to_string()))?,
                );
            }
            let c = nfvi_prober::stats::compare(&paired.first_p50_us, &paired.second_p50_us);
            println!(
                "{} rounds of {} probes: {} p50 {:.2} us, {} p50 {:.2} us; first - second = {:.2} us (95% CI {:.2} to {:.2})",
                args.rounds,
                args.block,
                args.first,
                nfvi_prober::stats::median(&paired.first_p50_us),
                args.second,
                nfvi_prober::stats::median(&paired.second_p50_us),
                c.difference_us,
                c.ci_low_us,
                c.ci_high_us
            );
            Ok(exit_code::CONFORMANT)
        }
        ProbeCommand::Ping(args) => {
            let mode: probe::Mode = args.mode.parse().map_err(CliError::bad_input)?;
            let proto: probe::Proto = args.proto.parse().map_err(CliError::bad_input)?;
            // --count, --warmup and --size are bounded by their value parsers (values.rs).
            let cfg = probe::PingConfig {
                // With --duration the clock ends the run; the prober adds the warm-up to the
                // count without overflowing.
                count: if args.duration.is_some() {
                    u64::MAX
                } else {
                    args.count
                },
                duration: args.duration,
                warmup: args.warmup,
                mode,
                interval: args.interval,
                payload: args.size,
                proto,
                kernel_rx_timestamps: args.kernel_timestamps,
                ..Default::default()
            };
            let result = probe::ping(args.peer, &cfg).map_err(CliError::Incomplete)?;
            let s = &result.summary;
            if args.format == Format::Json {
                return print_json(
                    &serde_json::json!({"peer": args.peer.to_string(), "mode": mode, "proto": proto, "summary": s}),
                );
            }
            println!(
                "{} probes to {} ({} mode), {} lost, {} warm-up discarded, {:.2} s\n  min {:.2}  p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}  us\n  mean {:.2} us, stddev {:.2} us",
                s.count,
                args.peer,
                args.mode,
                s.lost,
                s.warmup_discarded,
                s.elapsed_secs,
                s.min_us,
                s.p50_us,
                s.p90_us,
                s.p99_us,
                s.p999_us,
                s.max_us,
                s.mean_us,
                s.stddev_us
            );
            Ok(exit_code::CONFORMANT)
        }
    }
}

pub fn lab(cmd: &crate::cli::LabCommand) -> CmdResult {
    let mut progress = |m: &str| eprintln!("lab: {m}");
    let result = match cmd {
        crate::cli::LabCommand::Up { engine, nodes } => {
            if let Some(n) = *nodes
                && !(1..=nfvi_lab::nodes::MAX_NODES).contains(&n)
            {
                return Err(CliError::bad_input(format!(
                    "--nodes {n}: the lab builds 1 to {} nodes",
                    nfvi_lab::nodes::MAX_NODES
                )));
            }
            let engine = if engine == "podman" {
                nfvi_lab::Engine::Podman
            } else {
                nfvi_lab::Engine::Docker
            };
            nfvi_lab::up(
                &Target::local(&nfvi_verify::areas()),
                engine,
                *nodes,
                &mut progress,
            )
        }
        crate::cli::LabCommand::Down => nfvi_lab::down(&mut progress),
        crate::cli::LabCommand::HealthTicker => nfvi_lab::podman::health_ticker(),
        crate::cli::LabCommand::Status => {
            for line in nfvi_lab::status() {
                println!("{line}");
            }
            Ok(())
        }
    };
    result
        .map(|()| exit_code::CONFORMANT)
        .map_err(CliError::Incomplete)
}
