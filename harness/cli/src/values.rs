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
