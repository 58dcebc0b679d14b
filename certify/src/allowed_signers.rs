//! The ssh-keygen ALLOWED SIGNERS format (ssh-keygen(1)): which keys may sign, for which
//! principals (identities), namespaces and time window; looked up as `ssh-keygen -Y verify
//! -I IDENTITY` (an identity given) or `-Y find-principals` (none given) would.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Local, NaiveDateTime, TimeZone, Utc};

use crate::sshkey::fingerprint;

/// A line that is not in the format.
#[derive(Debug, thiserror::Error)]
#[error("allowed signers line {line}: {message}")]
pub struct ParseError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// One key line.
#[derive(Clone, Debug)]
pub struct Entry {
    /// 1-based line in the file.
    pub line: usize,
    /// The principals pattern-list, as written.
    pub principals: String,
    /// `cert-authority`: the key is a CA (certificates are not supported here).
    pub cert_authority: bool,
    /// `namespaces="…"`: the pattern-list the namespace must match.
    pub namespaces: Option<String>,
    /// `valid-after`.
    pub valid_after: Option<DateTime<Utc>>,
    /// `valid-before`.
    pub valid_before: Option<DateTime<Utc>>,
    /// The key type as written.
    pub key_type: String,
    /// The key blob (compared byte for byte with the signing key).
    pub key_blob: Vec<u8>,
}

/// A parsed allowed_signers file.
#[derive(Clone, Debug, Default)]
pub struct AllowedSigners {
    /// The key lines, in file order.
    pub entries: Vec<Entry>,
}

/// Why no line allows the signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No line holds the key.
    #[error("no allowed signer has the key {0}")]
    UnknownKey(String),
    /// Lines hold the key, but none for the identity.
    #[error("the key {key} is not allowed for the identity `{identity}` (it is for: {principals})")]
    Identity {
        /// The key's fingerprint.
        key: String,
        /// The identity asked for.
        identity: String,
        /// The principals of the lines with the key.
        principals: String,
    },
    /// The lines for the key do not allow the namespace, or not now.
    #[error("allowed signers line {line} has the key {key} but {why}")]
    Restricted {
        /// The line.
        line: usize,
        /// The key's fingerprint.
        key: String,
        /// `namespace … not allowed`, `not valid before …`, `expired …`.
        why: String,
    },
    /// Only `cert-authority` lines match.
    #[error(
        "only cert-authority lines ({lines}) match; certificates are not supported by nfvi-verify \
         (check the signature with `ssh-keygen -Y verify`)"
    )]
    CertificatesOnly {
        /// The lines, comma-separated.
        lines: String,
    },
}

/// `*` and `?` glob of OpenSSH's `match_pattern`.
pub fn match_pattern(s: &str, pattern: &str) -> bool {
    let (s, p): (Vec<char>, Vec<char>) = (s.chars().collect(), pattern.chars().collect());
    // Iterative glob with backtracking on the last `*`: linear-ish, no recursion.
    let (mut i, mut j, mut star, mut mark) = (0usize, 0usize, None::<usize>, 0usize);
    while i < s.len() {
        if j < p.len() && (p[j] == '?' || p[j] == s[i]) {
            i += 1;
            j += 1;
        } else if j < p.len() && p[j] == '*' {
            star = Some(j);
            mark = i;
            j += 1;
        } else if let Some(st) = star {
            j = st + 1;
            mark += 1;
            i = mark;
        } else {
            return false;
        }
    }
    p[j..].iter().all(|c| *c == '*')
}

/// OpenSSH's `match_pattern_list`: comma-separated patterns, `!` negates; a matching
/// negated pattern wins over any positive one.
pub fn match_pattern_list(s: &str, list: &str) -> bool {
    let mut matched = false;
    for pat in list.split(',') {
        let (negated, pat) = match pat.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, pat),
        };
        if match_pattern(s, pat) {
            if negated {
                return false;
            }
            matched = true;
        }
    }
    matched
}

/// A token, quotes kept out: up to unquoted whitespace.
fn token(s: &str) -> (String, &str) {
    let s = s.trim_start();
    let mut out = String::new();
    let mut quoted = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => return (out, &s[i..]),
            c => out.push(c),
        }
    }
    (out, "")
}

/// The raw options token: up to unquoted whitespace, quotes kept.
fn raw_token(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    let mut quoted = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => return (&s[..i], &s[i..]),
            _ => {}
        }
    }
    (s, "")
}

fn is_key_type(t: &str) -> bool {
    t.starts_with("ssh-") || t.starts_with("ecdsa-sha2-") || t.starts_with("sk-")
}

/// `YYYYMMDD[HHMM[SS]][Z]`: local time unless `Z`.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let (digits, utc) = match s.strip_suffix(['Z', 'z']) {
        Some(d) => (d, true),
        None => (s, false),
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let full = match digits.len() {
        8 => format!("{digits}000000"),
        12 => format!("{digits}00"),
        14 => digits.to_owned(),
        _ => return None,
    };
    let naive = NaiveDateTime::parse_from_str(&full, "%Y%m%d%H%M%S").ok()?;
    if utc {
        Some(Utc.from_utc_datetime(&naive))
    } else {
        Local
            .from_local_datetime(&naive)
            .earliest()
            .map(|t| t.with_timezone(&Utc))
    }
}

impl AllowedSigners {
    /// Parses the text of an allowed_signers file.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let mut entries = Vec::new();
        for (n, raw) in text.lines().enumerate() {
            let line = n + 1;
            let err = |m: String| ParseError { line, message: m };
            let l = raw.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let (principals, rest) = token(l);
            if principals.is_empty() {
                return Err(err("no principals".into()));
            }
            let (first, after) = raw_token(rest);
            let (options, key_part) = if is_key_type(first) {
                ("", rest)
            } else {
                (first, after)
            };
            let mut entry = Entry {
                line,
                principals,
                cert_authority: false,
                namespaces: None,
                valid_after: None,
                valid_before: None,
                key_type: String::new(),
                key_blob: Vec::new(),
            };
            for opt in split_options(options) {
                let (name, value) = match opt.split_once('=') {
                    Some((n, v)) => (n.to_ascii_lowercase(), Some(v.trim_matches('"').to_owned())),
                    None => (opt.to_ascii_lowercase(), None),
                };
                match (name.as_str(), value) {
                    ("cert-authority", None) => entry.cert_authority = true,
                    ("namespaces", Some(v)) => entry.namespaces = Some(v),
                    ("valid-after" | "valid-before", Some(v)) => {
                        let t = parse_time(&v).ok_or_else(|| {
                            err(format!("`{name}` time `{v}` is not YYYYMMDD[HHMM[SS]][Z]"))
                        })?;
                        if name == "valid-after" {
                            entry.valid_after = Some(t);
                        } else {
                            entry.valid_before = Some(t);
                        }
                    }
                    _ => return Err(err(format!("unknown or malformed option `{opt}`"))),
                }
            }
            let mut parts = key_part.split_whitespace();
            let (Some(kind), Some(b64)) = (parts.next(), parts.next()) else {
                return Err(err(
                    "no key (`principals [options] keytype base64-key`)".into()
                ));
            };
            if !is_key_type(kind) {
                return Err(err(format!("`{kind}` is not a key type")));
            }
            entry.key_type = kind.to_owned();
            entry.key_blob = STANDARD
                .decode(b64)
                .map_err(|_| err("the key is not base64".into()))?;
            entries.push(entry);
        }
        Ok(Self { entries })
    }

    /// The principals allowed to sign in `namespace` at `now` with the key whose blob is
    /// `key_blob`: for `identity`, the line that allows it (`-Y verify -I`); without, every
    /// line that holds the key (`-Y find-principals`).
    pub fn authorize(
        &self,
        key_blob: &[u8],
        identity: Option<&str>,
        namespace: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<&Entry>, Refusal> {
        let fp = fingerprint(key_blob);
        let mut restricted = None;
        let mut found = Vec::new();
        let mut other_principals = Vec::new();
        for e in &self.entries {
            if e.cert_authority || e.key_blob != key_blob {
                continue;
            }
            if let Some(id) = identity
                && !match_pattern_list(id, &e.principals)
            {
                other_principals.push(e.principals.clone());
                continue;
            }
            let why = if e
                .namespaces
                .as_deref()
                .is_some_and(|ns| !match_pattern_list(namespace, ns))
            {
                Some(format!("does not allow the namespace `{namespace}`"))
            } else if e.valid_after.is_some_and(|t| now < t) {
                Some(format!(
                    "is not valid before {}",
                    e.valid_after.unwrap_or(now)
                ))
            } else if e.valid_before.is_some_and(|t| now > t) {
                Some(format!("expired on {}", e.valid_before.unwrap_or(now)))
            } else {
                None
            };
            match why {
                Some(why) => {
                    restricted = restricted.or(Some(Refusal::Restricted {
                        line: e.line,
                        key: fp.clone(),
                        why,
                    }))
                }
                None => found.push(e),
            }
        }
        if !found.is_empty() {
            return Ok(found);
        }
        if let Some(r) = restricted {
            return Err(r);
        }
        let ca: Vec<String> = self
            .entries
            .iter()
            .filter(|e| {
                e.cert_authority && identity.is_none_or(|id| match_pattern_list(id, &e.principals))
            })
            .map(|e| e.line.to_string())
            .collect();
        if !ca.is_empty() {
            return Err(Refusal::CertificatesOnly {
                lines: ca.join(", "),
            });
        }
        if let Some(id) = identity
            && !other_principals.is_empty()
        {
            return Err(Refusal::Identity {
                key: fp,
                identity: id.to_owned(),
                principals: other_principals.join(" "),
            });
        }
        Err(Refusal::UnknownKey(fp))
    }
}

/// Splits `a,b="x,y",c` at unquoted commas.
fn split_options(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out.retain(|o| !o.is_empty());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_like_openssh() {
        let rows: &[(&str, &str, bool)] = &[
            ("alice@example.com", "alice@example.com", true),
            ("alice@example.com", "*@example.com", true),
            ("alice@example.com", "a?ice@*", true),
            ("alice@example.com", "bob@example.com", false),
            ("alice@example.com", "bob@*,alice@*", true),
            ("alice@example.com", "*@example.com,!alice@*", false),
            ("bob@example.com", "*@example.com,!alice@*", true),
            ("alice@example.com", "!alice@*", false),
            ("alice", "*", true),
            ("", "*", true),
            ("a", "", false),
            (
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaab",
                "*a*a*a*a*a*a*a*a*c",
                false,
            ),
        ];
        for (s, p, want) in rows {
            assert_eq!(match_pattern_list(s, p), *want, "{s} vs {p}");
        }
    }

    #[test]
    fn times_parse_in_every_documented_form() {
        assert_eq!(
            parse_time("20260101Z").unwrap().to_rfc3339(),
            "2026-01-01T00:00:00+00:00"
        );
        assert_eq!(
            parse_time("202601011230Z").unwrap().to_rfc3339(),
            "2026-01-01T12:30:00+00:00"
        );
        assert_eq!(
            parse_time("20260101123059Z").unwrap().to_rfc3339(),
            "2026-01-01T12:30:59+00:00"
        );
        assert!(parse_time("20260101").is_some());
        for bad in [
            "2026",
            "20261301Z",
            "2026010112",
            "x0260101",
            "20260101ZZ",
            "",
        ] {
            assert!(parse_time(bad).is_none(), "{bad}");
        }
    }

    const KEY_A: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAwZeMeZ8/r+pLj1AbHmrWfj2r9oWjDj+NMr8XagvS0i";
    const KEY_B: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEN0M3pZN8kUGcRiZ0fIKKwgIsyZWjbfZkNYGSuy9Ybw";

    fn blob(k: &str) -> Vec<u8> {
        STANDARD
            .decode(k.split_whitespace().nth(1).unwrap())
            .unwrap()
    }

    #[test]
    fn lookups_follow_identity_namespace_and_validity() {
        let text = format!(
            "# reviewers\n\
             alice@example.com {KEY_A} alice's laptop\n\
             \n\
             *@ops.example.com,!mallory@ops.example.com namespaces=\"nfvi-verify,file\" {KEY_B}\n\
             old@example.com valid-before=\"20200101Z\" {KEY_B}\n\
             future@example.com valid-after=\"29990101Z\" {KEY_B}\n\
             git@example.com namespaces=\"git\" {KEY_A}\n\
             ca@example.com cert-authority {KEY_B}\n"
        );
        let a = AllowedSigners::parse(&text).unwrap();
        assert_eq!(a.entries.len(), 6);
        let now = Utc::now();
        let ns = "nfvi-verify";
        let (ka, kb) = (blob(KEY_A), blob(KEY_B));
        let ok = |k: &[u8], id: Option<&str>| {
            a.authorize(k, id, ns, now)
                .map(|v| v.iter().map(|e| e.line).collect::<Vec<_>>())
        };
        assert_eq!(ok(&ka, Some("alice@example.com")), Ok(vec![2]));
        assert_eq!(ok(&kb, Some("bob@ops.example.com")), Ok(vec![4]));
        assert!(matches!(
            ok(&kb, Some("mallory@ops.example.com")),
            Err(Refusal::Identity { .. })
        ));
        assert!(matches!(
            ok(&ka, Some("bob@ops.example.com")),
            Err(Refusal::Identity { .. })
        ));
        assert!(matches!(
            ok(&kb, Some("old@example.com")),
            Err(Refusal::Restricted { line: 5, .. })
        ));
        assert!(matches!(
            ok(&kb, Some("future@example.com")),
            Err(Refusal::Restricted { line: 6, .. })
        ));
        assert!(matches!(
            ok(&ka, Some("git@example.com")),
            Err(Refusal::Restricted { line: 7, .. })
        ));
        assert!(matches!(
            ok(&kb, Some("ca@example.com")),
            Err(Refusal::CertificatesOnly { .. })
        ));
        // find-principals: every line with the key that allows the namespace now.
        assert_eq!(ok(&ka, None), Ok(vec![2]));
        assert_eq!(ok(&kb, None), Ok(vec![4]));
        assert!(matches!(
            ok(&[1, 2, 3], None),
            Err(Refusal::CertificatesOnly { .. })
        ));
        let only_a = AllowedSigners::parse(&format!("a@b {KEY_A}")).unwrap();
        assert!(matches!(
            only_a.authorize(&kb, None, ns, now),
            Err(Refusal::UnknownKey(_))
        ));
        // The namespace of the signature, not the file's, is matched.
        assert!(
            a.authorize(&ka, Some("git@example.com"), "git", now)
                .is_ok()
        );
    }

    #[test]
    fn bad_lines_name_their_number() {
        for (text, line) in [
            ("a@b\n", 1),
            ("# c\na@b ssh-ed25519\n", 2),
            ("a@b nosuchopt ssh-ed25519 AAAA\n", 1),
            ("a@b valid-after=\"tomorrow\" ssh-ed25519 AAAA\n", 1),
            ("a@b ssh-ed25519 !!notbase64!!\n", 1),
            ("a@b namespaces=\"x\" notakey AAAA\n", 1),
        ] {
            let e = AllowedSigners::parse(text).unwrap_err();
            assert_eq!(e.line, line, "{text}: {e}");
        }
        // Quoted principals and options with commas inside quotes.
        let a = AllowedSigners::parse(&format!(
            "\"a@b,c@d\" namespaces=\"x,nfvi-verify\",valid-after=\"20000101Z\" {KEY_A}"
        ))
        .unwrap();
        assert_eq!(a.entries[0].principals, "a@b,c@d");
        assert_eq!(a.entries[0].namespaces.as_deref(), Some("x,nfvi-verify"));
    }
}
