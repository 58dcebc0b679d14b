//! Values typed on the command line that clap does not parse itself. In the library (not
//! the binary's `cli` module) so that the property targets in `fuzz/` can reach them.

/// A duration such as `5s`, `500ms`, `100us` or `2m` (a bare number is seconds): positive,
/// at least 1ns, and one a `Duration` holds; anything else is an error naming the value.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((s, "s"), |i| s.split_at(i));
    let v: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration such as 5s, 500ms or 100us"))?;
    let secs = match unit {
        "s" => v,
        "ms" => v / 1e3,
        "us" => v / 1e6,
        "m" => v * 60.0,
        _ => return Err(format!("`{s}`: unknown unit `{unit}`; use s, ms, us or m")),
    };
    if !secs.is_finite() || secs <= 0.0 {
        return Err(format!("`{s}` must be a positive duration"));
    }
    // Checked: a value past what a Duration holds is an error, not a panic, and one that
    // rounds to nothing is not "positive".
    match std::time::Duration::try_from_secs_f64(secs) {
        Ok(d) if d.is_zero() => Err(format!(
            "`{s}` rounds to zero; the shortest duration is 1ns (0.001us)"
        )),
        Ok(d) => Ok(d),
        Err(_) => Err(format!(
            "`{s}` is longer than any duration this tool can wait"
        )),
    }
}

/// The most probes one `probe ping` or one block of `probe compare` sends (a billion: hours at
/// loopback speed); longer measurements take `--duration`.
pub const MAX_PROBES: u64 = 1_000_000_000;
/// The most rounds of `probe compare` (each is two blocks).
pub const MAX_ROUNDS: usize = 100_000;
/// The largest UDP payload over IPv4 (65535 - 20 - 8), and the smallest probe (its sequence
/// number).
pub const PAYLOAD_RANGE: (usize, usize) = (8, 65_507);
/// The most checks `run --jobs` runs at the same time.
pub const MAX_JOBS: usize = 256;
/// The longest `run --timeout`, in seconds (a week).
pub const MAX_TIMEOUT_SECS: u64 = 7 * 24 * 3600;

/// A whole number from `lo` to `hi`; the error names the value and the range (clap adds the
/// flag).
pub fn parse_count(s: &str, lo: u64, hi: u64) -> Result<u64, String> {
    let n: u64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a whole number from {lo} to {hi}"))?;
    if (lo..=hi).contains(&n) {
        Ok(n)
    } else {
        Err(format!("{n} is out of range: expected {lo} to {hi}"))
    }
}

fn parse_usize(s: &str, lo: usize, hi: usize) -> Result<usize, String> {
    // Both bounds fit a u64, and a value within them fits a usize.
    parse_count(s, lo as u64, hi as u64).map(|n| n as usize)
}

/// Measured probes (`probe ping --count`, `probe compare --block`): 1 to [`MAX_PROBES`].
pub fn parse_probes(s: &str) -> Result<u64, String> {
    parse_count(s, 1, MAX_PROBES)
}

/// Warm-up probes (`--warmup`): 0 to [`MAX_PROBES`].
pub fn parse_warmup(s: &str) -> Result<u64, String> {
    parse_count(s, 0, MAX_PROBES)
}

/// `probe compare --rounds`: 1 to [`MAX_ROUNDS`].
pub fn parse_rounds(s: &str) -> Result<usize, String> {
    parse_usize(s, 1, MAX_ROUNDS)
}

/// `probe ping --size`, bytes: [`PAYLOAD_RANGE`].
pub fn parse_payload(s: &str) -> Result<usize, String> {
    parse_usize(s, PAYLOAD_RANGE.0, PAYLOAD_RANGE.1)
}

/// `run --jobs`: 1 to [`MAX_JOBS`].
pub fn parse_jobs(s: &str) -> Result<usize, String> {
    parse_usize(s, 1, MAX_JOBS)
}

/// `run --timeout`, seconds: 1 to [`MAX_TIMEOUT_SECS`].
pub fn parse_timeout_secs(s: &str) -> Result<u64, String> {
    parse_count(s, 1, MAX_TIMEOUT_SECS)
}

/// The longest `probe ping --interval` (paced mode waits it between probes).
pub const MAX_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// `probe ping --interval`: a duration as [`parse_duration`], at most [`MAX_INTERVAL`].
pub fn parse_interval(s: &str) -> Result<std::time::Duration, String> {
    let d = parse_duration(s)?;
    if d > MAX_INTERVAL {
        return Err(format!(
            "`{s}` is out of range: expected 1ns to {}s",
            MAX_INTERVAL.as_secs()
        ));
    }
    Ok(d)
}
