//! Host patterns of an INI inventory: `name`, `name:port`, `[v6::addr]:port`, and ranges
//! (`compute[01:04]`, `node[a:c]`, `host[1:10:2]`, several in one name), expanded as
//! Ansible's `expand_hostname_range` does: inclusive, with an optional stride, leading zeros
//! kept as written.

/// The most hosts one pattern may expand to.
pub const MAX_RANGE_HOSTS: u64 = 10_000;

/// A host token split into its names and the port it names, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// The host names, in range order.
    pub names: Vec<String>,
    /// The port after `:`, if one was written.
    pub port: Option<u16>,
}

/// Splits a host token (the first word of a host line) into names and port. Errors say what
/// was expected.
pub fn parse(token: &str) -> Result<Pattern, String> {
    if token.is_empty() {
        return Err("empty host name; expected a host name or pattern".into());
    }
    if token.ends_with(':') {
        return Err(format!(
            "host `{token}` ends with `:`; expected host:port with a port number"
        ));
    }
    // `[fe80::1]` or `[fe80::1]:2222`: a bracketed IPv6 address, not a range.
    if let Some(rest) = token.strip_prefix('[')
        && let Some((addr, after)) = rest.split_once(']')
        && addr.parse::<std::net::Ipv6Addr>().is_ok()
        && (after.is_empty() || after.starts_with(':'))
    {
        let port = match after {
            "" => None,
            _ => Some(port(token, after.strip_prefix(':').unwrap_or(after))?),
        };
        return Ok(Pattern {
            names: vec![checked_name(addr)?],
            port,
        });
    }
    let colons = outside_brackets(token, ':');
    match colons.as_slice() {
        [] => Ok(Pattern {
            names: expand(token)?,
            port: None,
        }),
        [at] => Ok(Pattern {
            names: expand(&token[..*at])?,
            port: Some(port(token, &token[at + 1..])?),
        }),
        // Two colons or more outside brackets: an IPv6 address, taken as written.
        _ => Ok(Pattern {
            names: vec![checked_name(token)?],
            port: None,
        }),
    }
}

fn port(token: &str, digits: &str) -> Result<u16, String> {
    digits
        .parse::<u16>()
        .ok()
        .filter(|p| *p > 0 && digits.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| {
            format!("host `{token}`: port `{digits}` is not a port number; expected 1 to 65535")
        })
}

/// Byte offsets of `c` outside `[...]`.
fn outside_brackets(s: &str, c: char) -> Vec<usize> {
    let mut depth = 0usize;
    let mut at = Vec::new();
    for (i, ch) in s.char_indices() {
        match ch {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            _ if ch == c && depth == 0 => at.push(i),
            _ => {}
        }
    }
    at
}

/// A host name must not look like an option to `ssh`, nor hold whitespace or control
/// characters.
pub fn checked_name(name: &str) -> Result<String, String> {
    if name.is_empty() {
        return Err("empty host name; expected a host name or address".into());
    }
    if name.starts_with('-') {
        return Err(format!(
            "host name `{name}` starts with `-`; expected a host name or address"
        ));
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "host name {name:?} holds whitespace or control characters; expected a host name or address"
        ));
    }
    Ok(name.to_owned())
}

/// Expands every `[start:end(:stride)]` of `pattern`, left to right (the first range varies
/// slowest, as in Ansible).
pub fn expand(pattern: &str) -> Result<Vec<String>, String> {
    // The pattern as literal text and ranges, each a list of alternatives.
    let mut parts: Vec<Vec<String>> = Vec::new();
    let mut rest = pattern;
    let mut total: u64 = 1;
    while !rest.is_empty() {
        let Some(open) = rest.find(['[', ']']) else {
            parts.push(vec![rest.to_owned()]);
            break;
        };
        if rest.as_bytes()[open] == b']' {
            return Err(format!(
                "host pattern `{pattern}` has `]` without `[`; expected name[start:end]"
            ));
        }
        let Some(len) = rest[open..].find(']') else {
            return Err(format!(
                "host pattern `{pattern}` has `[` without `]`; expected name[start:end]"
            ));
        };
        parts.push(vec![rest[..open].to_owned()]);
        let items = range_items(pattern, &rest[open + 1..open + len])?;
        total = total.saturating_mul(items.len() as u64);
        if total > MAX_RANGE_HOSTS {
            return Err(format!(
                "host pattern `{pattern}` expands to more than {MAX_RANGE_HOSTS} hosts; expected \
                 at most {MAX_RANGE_HOSTS}"
            ));
        }
        parts.push(items);
        rest = &rest[open + len + 1..];
    }
    let mut names = vec![String::new()];
    for alternatives in &parts {
        names = names
            .iter()
            .flat_map(|n| alternatives.iter().map(move |a| format!("{n}{a}")))
            .collect();
    }
    names.iter().map(|n| checked_name(n)).collect()
}

/// The items of one `start:end(:stride)` range.
fn range_items(pattern: &str, range: &str) -> Result<Vec<String>, String> {
    let expected = "expected [start:end] or [start:end:stride] with numbers or single letters";
    let parts: Vec<&str> = range.split(':').collect();
    let (start, end, stride) = match parts.as_slice() {
        [s, e] => (*s, *e, None),
        [s, e, st] => (*s, *e, Some(*st)),
        _ => return Err(format!("host range `{pattern}` is malformed; {expected}")),
    };
    // Ansible reads an empty start as 0.
    let start = if start.is_empty() { "0" } else { start };
    let stride = match stride {
        None => 1,
        Some(s) => s
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0 && s.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| {
                format!("host range `{pattern}`: stride `{s}` is not a positive number; {expected}")
            })?,
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let letter = |s: &str| s.len() == 1 && s.bytes().all(|b| b.is_ascii_alphabetic());
    if digits(start) && digits(end) {
        let width = if start.len() > 1 && start.starts_with('0') {
            if start.len() != end.len() {
                return Err(format!(
                    "host range `{pattern}`: `{start}` and `{end}` differ in width; expected \
                     zero-padded bounds of equal length"
                ));
            }
            start.len()
        } else {
            0
        };
        let too_big = || format!("host range `{pattern}`: a bound is too large; {expected}");
        let s: u64 = start.parse().map_err(|_| too_big())?;
        let e: u64 = end.parse().map_err(|_| too_big())?;
        if s > e {
            return Err(format!(
                "host range `{pattern}` runs backwards; expected [start:end] with start <= end"
            ));
        }
        let count = (e - s) / stride + 1;
        if count > MAX_RANGE_HOSTS {
            return Err(format!(
                "host range `{pattern}` expands to {count} hosts; expected at most {MAX_RANGE_HOSTS}"
            ));
        }
        Ok((0..count)
            .map(|i| format!("{:0width$}", s + i * stride))
            .collect())
    } else if letter(start) && letter(end) {
        let (s, e) = (start.as_bytes()[0], end.as_bytes()[0]);
        if s > e {
            return Err(format!(
                "host range `{pattern}` runs backwards; expected [start:end] with start <= end"
            ));
        }
        let stride = usize::try_from(stride).unwrap_or(usize::MAX);
        Ok((s..=e)
            .step_by(stride)
            .map(|b| char::from(b).to_string())
            .collect())
    } else {
        Err(format!(
            "host range `{pattern}` mixes or misuses bounds `{start}` and `{end}`; {expected}"
        ))
    }
}
