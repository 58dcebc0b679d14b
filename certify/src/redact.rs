//! The redaction pass over the text members of a bundle: private keys, JWTs, secret-looking
//! keys' values, Authorization headers and passwords in URLs are replaced by
//! `[REDACTED:<kind>]`. Only the secret value is replaced, and the surrounding syntax stays
//! valid: inside a JSON string nothing but the marker (no quote, no backslash) is written,
//! and escape sequences are removed whole. Line numbers stay the same (a private key block
//! keeps its line breaks), so a [`Redaction`]'s line is the line in the bundle's member.

use serde::{Deserialize, Serialize};

/// One secret removed: where (never what).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redaction {
    /// The member (bundle path).
    pub member: String,
    /// 1-based line.
    pub line: usize,
    /// What it was: `private-key`, `jwt`, `password`, `secret`, `token`, `api-key`,
    /// `registry-auth`, `credential`, `authorization`, `url-password`.
    pub kind: String,
}

const MARK: &str = "[REDACTED:";

fn marker(kind: &str) -> String {
    format!("{MARK}{kind}]")
}

/// Whether `bytes` is text to scan and rewrite (UTF-8 without NUL bytes).
pub fn as_text(bytes: &[u8]) -> Option<&str> {
    if bytes.contains(&0) {
        return None;
    }
    std::str::from_utf8(bytes).ok()
}

/// The secrets a binary member holds, scanned in its printable runs (a binary member cannot
/// be rewritten; the bundle refuses one that holds a secret).
pub fn scan_binary(member: &str, bytes: &[u8]) -> Vec<Redaction> {
    let text: String = bytes
        .iter()
        .map(|b| {
            if b.is_ascii_graphic() || *b == b' ' || *b == b'\n' {
                *b as char
            } else {
                '\n'
            }
        })
        .collect();
    redact(member, &text).1
}

/// Redacts `text`, returning the new text and what was removed.
pub fn redact(member: &str, text: &str) -> (String, Vec<Redaction>) {
    let mut found: Vec<(usize, &'static str)> = Vec::new();
    let text = multi::pem_blocks(text, &mut found);
    let mut out = String::with_capacity(text.len());
    let mut state = multi::State::default();
    for (n, line) in text.split_inclusive('\n').enumerate() {
        let mut kinds = Vec::new();
        let l = match state.block_body(line, &mut kinds) {
            Some(l) => l,
            None => {
                let mut l = redact_line(line, &mut kinds);
                state.after_line(line, &mut l, &mut kinds);
                l
            }
        };
        found.extend(kinds.into_iter().map(|k| (n + 1, k)));
        out.push_str(&l);
    }
    found.sort();
    let list = found
        .into_iter()
        .map(|(line, kind)| Redaction {
            member: member.to_owned(),
            line,
            kind: kind.to_owned(),
        })
        .collect();
    (out, list)
}

/// Per byte of a line: its range in the escaped original, or `None` for a marker's.
type Origins = Vec<Option<(usize, usize)>>;

/// What the passes over one line found, and (when the line was un-escaped from HTML or
/// XML first) where each byte of the line being rewritten came from.
struct Edits<'a> {
    kinds: &'a mut Vec<&'static str>,
    src: Option<Origins>,
}

/// Replaces `start..end` of `line` by the marker of `kind`; returns the marker's length.
fn replace(
    line: &mut String,
    start: usize,
    end: usize,
    kind: &'static str,
    ed: &mut Edits,
) -> usize {
    let m = marker(kind);
    if let Some(src) = &mut ed.src {
        src.splice(start..end, std::iter::repeat_n(None, m.len()));
    }
    line.replace_range(start..end, &m);
    ed.kinds.push(kind);
    m.len()
}

fn passes(line: &mut String, ed: &mut Edits) {
    jwts(line, ed);
    url_passwords(line, ed);
    key_values(line, ed);
}

/// One line through every pass; then, if it holds HTML or XML character references
/// (`&#34;`, `&quot;`, `&#39;`, `&apos;`…: JSON or a Python dict escaped in report.html or
/// junit.xml), again un-escaped, with only the secrets replaced in the escaped original.
fn redact_line(line: &str, kinds: &mut Vec<&'static str>) -> String {
    let mut l = line.to_owned();
    passes(&mut l, &mut Edits { kinds, src: None });
    let Some((mut decoded, src)) = multi::decode_entities(&l) else {
        return l;
    };
    let mut ed = Edits {
        kinds,
        src: Some(src),
    };
    let before = ed.kinds.len();
    passes(&mut decoded, &mut ed);
    if ed.kinds.len() == before {
        return l;
    }
    let src = ed.src.unwrap_or_default();
    let mut out = Vec::with_capacity(l.len());
    for (i, c) in decoded.bytes().enumerate() {
        match src.get(i).copied().flatten() {
            Some((s, e)) => out.extend_from_slice(&l.as_bytes()[s..e]),
            None => out.push(c),
        }
    }
    String::from_utf8(out).unwrap_or(l)
}

fn is_b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// `eyJ…`.`…`.`…` (a JWT: its header is base64url of `{"`).
fn jwts(line: &mut String, ed: &mut Edits) {
    let mut from = 0;
    while let Some(off) = line[from..].find("eyJ") {
        let start = from + off;
        let b = line.as_bytes();
        if start > 0 && is_b64url(b[start - 1]) {
            from = start + 3;
            continue;
        }
        let seg = |p: usize| p + b[p..].iter().take_while(|c| is_b64url(**c)).count();
        let e1 = seg(start);
        let ok1 = e1 - start >= 10 && b.get(e1) == Some(&b'.');
        let e2 = if ok1 { seg(e1 + 1) } else { e1 };
        let ok2 = ok1 && e2 - e1 > 4 && b.get(e2) == Some(&b'.');
        if !ok2 {
            from = e1.max(start + 3);
            continue;
        }
        let e3 = seg(e2 + 1);
        from = start + replace(line, start, e3, "jwt", ed);
    }
}

/// `scheme://user:password@host`: the password goes.
fn url_passwords(line: &mut String, ed: &mut Edits) {
    let mut from = 0;
    while let Some(off) = line[from..].find("://") {
        let auth_start = from + off + 3;
        let b = line.as_bytes();
        let auth_end = auth_start
            + b[auth_start..]
                .iter()
                .take_while(|c| !(c.is_ascii_whitespace() || b"/?#\"'<>\\`".contains(c)))
                .count();
        from = auth_end.max(auth_start);
        let authority = &line[auth_start..auth_end];
        let Some(at) = authority.rfind('@') else {
            continue;
        };
        let Some(colon) = authority[..at].find(':') else {
            continue;
        };
        let pw = &authority[colon + 1..at];
        if pw.is_empty() || pw.starts_with(MARK) || pw.starts_with('$') {
            continue;
        }
        let start = auth_start + colon + 1;
        from = start + replace(line, start, auth_start + at, "url-password", ed);
    }
}

/// The kind of secret a key name says its value is, if any.
pub fn secret_kind(key: &str) -> Option<&'static str> {
    let k = key.trim_start_matches(['-', '.']).to_ascii_lowercase();
    // Object names with a generated suffix (`pod-secrets-01fe0a21-…`) are names, not keys.
    let generated = k.split(['-', '_', '.']).any(|seg| {
        seg.len() >= 8
            && seg.bytes().all(|c| c.is_ascii_hexdigit())
            && seg.bytes().any(|c| c.is_ascii_digit())
    });
    // Long names are rarely keys, unless they end like one
    // (`CI_…_DATABASE_PASSWORD`).
    let ends_secret = ["password", "passwd", "_pass", "secret", "token", "api_key"]
        .iter()
        .any(|s| k.ends_with(s));
    if (k.len() > 48 && !ends_secret) || k.len() > 160 || generated {
        return None;
    }
    // Names of files, paths, policies and settings about secrets are not secrets.
    const NOT: &[&str] = &[
        "_file",
        "-file",
        "file_",
        "_path",
        "-path",
        "_dir",
        "-dir",
        "authentication",
        "policy",
        "length",
        "expir",
        "_ttl",
        "lifetime",
        "_type",
        "-type",
        "_count",
        "-count",
        "rotation",
        "_url",
        "-url",
        "endpoint",
        "_uri",
        "method",
        "_name",
        "-name",
        "name_",
        "_ref",
        "-ref",
        "_mode",
        "enabled",
        "required",
    ];
    if NOT.iter().any(|n| k.contains(n))
        || k.ends_with("_id")
        || k.ends_with("_at")
        || k.ends_with("name")
    {
        return None;
    }
    let kind = if k == "authorization" || k == "proxy-authorization" {
        "authorization"
    } else if k == "auth" || k.ends_with("identitytoken") || k.ends_with("registrytoken") {
        "registry-auth"
    } else if k.contains("private_key")
        || k.contains("private-key")
        || k.contains("privatekey")
        || k.contains("client-key")
    {
        "private-key"
    } else if k.contains("password")
        || k.contains("passwd")
        // `DB_PASS`, `ansible_become_pass`; not a count (`total_pass`).
        || ((k.ends_with("_pass") || k.ends_with("-pass"))
            && !k.starts_with("total")
            && !k.starts_with("num")
            // A count of what passed (`controls_pass = 55`), not `ssh_pass`.
            && (!k[..k.len() - 5].ends_with('s') || k[..k.len() - 5].ends_with("ss")))
    {
        "password"
    } else if k.contains("api_key") || k.contains("apikey") || k.contains("api-key") {
        "api-key"
    } else if k.contains("secret") {
        "secret"
    } else if k.contains("token") {
        "token"
    } else if k.contains("credential") {
        "credential"
    } else {
        return None;
    };
    Some(kind)
}

/// HTTP authentication schemes whose credentials follow the name.
const AUTH_SCHEMES: &[&str] = &[
    "basic",
    "bearer",
    "digest",
    "negotiate",
    "ntlm",
    "token",
    "oauth",
    "apikey",
    "aws4-hmac-sha256",
];

fn is_key_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.'
}

/// Whether a `'` at `i` opens a string: not an apostrophe inside a word (`can't`), but
/// after a blank, punctuation, or a Python prefix (`u'…'`).
fn opens_single(b: &[u8], i: usize) -> bool {
    let before = |n: usize| i.checked_sub(n).map(|p| b[p]);
    match before(1) {
        None => true,
        Some(c) if !c.is_ascii_alphanumeric() => true,
        Some(b'u' | b'b' | b'r' | b'f' | b'U' | b'B' | b'R' | b'F') => {
            !before(2).is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
        }
        Some(_) => false,
    }
}

/// The quote (`"` or `'`) of the string byte `pos` is inside, if any.
fn in_string(b: &[u8], pos: usize) -> Option<u8> {
    let (mut inside, mut i) = (None, 0);
    while i < pos {
        match (b[i], inside) {
            (b'\\', _) => i += 1,
            (b'"', None) => inside = Some(b'"'),
            (b'\'', None) if opens_single(b, i) => inside = Some(b'\''),
            (q, Some(open)) if q == open => inside = None,
            _ => {}
        }
        i += 1;
    }
    inside
}

/// `KEY: value`, `KEY=value`, `"KEY": "value"`, `KEY = "value"`, `{'KEY': u'value'}`,
/// `--KEY value`, with a secret-looking KEY.
fn key_values(line: &mut String, ed: &mut Edits) {
    let mut i = 0;
    while i < line.len() {
        let b = line.as_bytes();
        if !is_key_char(b[i]) || (i > 0 && is_key_char(b[i - 1])) {
            i += 1;
            continue;
        }
        let j = i + b[i..].iter().take_while(|c| is_key_char(**c)).count();
        let Some(kind) = secret_kind(&line[i..j]) else {
            i = j;
            continue;
        };
        let Some((start, end)) = value_span(b, i, j, kind).or_else(|| flag_value(b, i, j, kind))
        else {
            i = j;
            continue;
        };
        i = start + replace(line, start, end, kind, ed);
    }
}

/// The value of the key at `key_start..key_end` of `b`, if it is one a secret is kept in.
pub(crate) fn value_span(
    b: &[u8],
    key_start: usize,
    key_end: usize,
    kind: &str,
) -> Option<(usize, usize)> {
    // A quoted key has its quote on both sides (`"password":`, `\"password\":`,
    // `'password':`); a quote on one side only opens a string the key is inside.
    let mut k = key_end;
    let quote = key_start
        .checked_sub(1)
        .map(|p| b[p])
        .filter(|q| *q == b'"' || *q == b'\'');
    let quoted_key = match quote {
        Some(q) if b.get(k) == Some(&q) => {
            k += 1;
            true
        }
        Some(q) if b.get(k) == Some(&b'\\') && b.get(k + 1) == Some(&q) => {
            k += 2;
            true
        }
        _ => false,
    };
    // A key that opens a double-quoted string (`"password=x"`) is taken as outside it, so
    // an escaped quote in its value does not end the value early; after `'` (a TOML
    // literal string) the closing `'` must still end it.
    let from_quote = quoted_key || quote == Some(b'"');
    let outer = in_string(b, if from_quote { key_start - 1 } else { key_start });
    let skip_ws = |mut k: usize| {
        while b.get(k).is_some_and(|c| *c == b' ' || *c == b'\t') {
            k += 1;
        }
        k
    };
    k = skip_ws(k);
    let sep = *b.get(k)?;
    if !(sep == b':' || sep == b'=') || b.get(k + 1) == Some(&sep) {
        return None;
    }
    // `key: value` (YAML, headers) has a blank after the colon; `passwd:amd64` (a package)
    // or `host:port` is no key. A quoted key (`"password":"x"`) needs none, nor does an
    // HTTP header (`X-Auth-Token:x`, `Authorization:Basic x`).
    let header = kind == "authorization"
        || b[key_start..key_end]
            .get(..2)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"x-"));
    if sep == b':'
        && !quoted_key
        && !header
        && !b.get(k + 1).is_some_and(|c| *c == b' ' || *c == b'\t')
    {
        return None;
    }
    k = skip_ws(k + 1);
    // A Python string prefix: `{u'password': u'x'}`.
    if quoted_key
        && b.get(k).is_some_and(|c| b"ubrUBR".contains(c))
        && b.get(k + 1).is_some_and(|c| *c == b'\'' || *c == b'"')
    {
        k += 1;
    }
    let json_line = matches!(
        b.iter().find(|c| !c.is_ascii_whitespace()),
        Some(b'{' | b'[' | b'"')
    );
    let (start, end) = match b.get(k)? {
        b'"' if outer != Some(b'"') => {
            let s = k + 1;
            (s, scan(b, s, |c, _| c == b'"'))
        }
        b'\\' if b.get(k + 1) == Some(&b'"') => {
            let s = k + 2;
            (
                s,
                scan(b, s, |c, next| {
                    c == b'"' || (c == b'\\' && next == Some(b'"'))
                }),
            )
        }
        b'\'' if outer != Some(b'\'') => {
            let s = k + 1;
            (s, scan(b, s, |c, _| c == b'\'' || c == b'"'))
        }
        b'"' | b'\'' | b'{' | b'[' | b'|' | b'>' => return None,
        // `"name": text` with a bare word after a quoted name is a log line
        // (`Pod "pod-secret-x": Phase="Pending"`), not JSON (whose bare values are numbers
        // and literals, never secrets).
        _ if quoted_key && sep == b':' => return None,
        _ => {
            let mut s = k;
            if kind == "authorization" {
                // Keep the scheme (`Bearer`, `Basic`): the credentials follow it. Without a
                // known scheme it is prose or configuration (`authorization: mode Webhook`).
                let scheme = b[k..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == b'-')
                    .count();
                let name = String::from_utf8_lossy(&b[k..k + scheme]).to_ascii_lowercase();
                if !AUTH_SCHEMES.contains(&name.as_str()) || b.get(k + scheme) != Some(&b' ') {
                    return None;
                }
                s = skip_ws(k + scheme);
            }
            // Words: a YAML or header value runs to the end of the line; inside a string,
            // or on a JSON line, a value is one word and the string's quote ends it.
            let words = sep == b':' && outer.is_none() && !json_line;
            let e = scan(b, s, |c, next| {
                c == b'"'
                    || c == b'\n'
                    || c == b'\r'
                    || (c == b'\\' && next == Some(b'"') && outer == Some(b'"'))
                    || (c == b'\'' && outer == Some(b'\''))
                    || (!words && (c.is_ascii_whitespace() || b",;&}])'".contains(&c)))
                    // `\n`, `\t`, `\r` inside a JSON string end a word too.
                    || (!words && c == b'\\' && matches!(next, Some(b'n' | b't' | b'r')))
            });
            // A line's trailing blanks are not part of the value.
            let mut e2 = e;
            while e2 > s && b[e2 - 1].is_ascii_whitespace() {
                e2 -= 1;
            }
            (s, e2)
        }
    };
    let v = std::str::from_utf8(&b[start..end]).ok()?;
    let json_number = quoted_key
        && v.bytes()
            .all(|c| c.is_ascii_digit() || c == b'.' || c == b'-');
    (!json_number && !benign(v, kind)).then_some((start, end))
}

/// Values that are no secret: empty, literals, placeholders, variables, masks, key paths.
fn benign(v: &str, kind: &str) -> bool {
    let lower = v.to_ascii_lowercase();
    v.is_empty()
        || [
            "true", "false", "null", "none", "nil", "~", "yes", "no", "on", "off", "enabled",
            "disabled",
        ]
        .contains(&lower.as_str())
        || lower.starts_with("\\u003c")
        || v.starts_with(MARK)
        || v.starts_with(['$', '<', '%', '{'])
        || v.bytes().all(|c| c == b'*' || c == b'x' || c == b'X')
        || (kind == "private-key"
            && (v.starts_with('/') || v.ends_with(".key") || v.ends_with(".pem")))
}

/// `--password X`, `--os-password "X"`: a command-line option with a secret-looking name
/// and its value after a blank (`--password=X` is a key and value already).
fn flag_value(b: &[u8], key_start: usize, key_end: usize, kind: &str) -> Option<(usize, usize)> {
    if b[key_start] != b'-' || b.get(key_end) != Some(&b' ') {
        return None;
    }
    let outer = in_string(b, key_start);
    let k = key_end + 1;
    let (s, e) = match b.get(k)? {
        b'"' if outer != Some(b'"') => (k + 1, scan(b, k + 1, |c, _| c == b'"')),
        b'\\' if b.get(k + 1) == Some(&b'"') => (
            k + 2,
            scan(b, k + 2, |c, n| {
                c == b'"' || (c == b'\\' && n == Some(b'"'))
            }),
        ),
        b'\'' if outer != Some(b'\'') => (k + 1, scan(b, k + 1, |c, _| c == b'\'' || c == b'"')),
        b'-' | b'"' | b'\'' | b'\\' => return None,
        _ => (
            k,
            scan(b, k, |c, _| {
                c.is_ascii_whitespace() || b"\"'\\<&;|`),]}".contains(&c)
            }),
        ),
    };
    let v = std::str::from_utf8(&b[s..e]).ok()?;
    // Prose about an option (`--password is not set`) is no value.
    const WORDS: &[&str] = &[
        "is",
        "not",
        "must",
        "should",
        "to",
        "and",
        "or",
        "flag",
        "option",
        "parameter",
        "argument",
        "set",
        "the",
        "a",
        "an",
        "when",
        "if",
        "with",
        "are",
        "was",
        "be",
        "will",
        "can",
        "of",
        "in",
        "for",
        "as",
        "may",
        "has",
        "arguments",
        "parameters",
        "options",
        "flags",
        "value",
        "values",
        "file",
        "files",
        "it",
        "this",
        "that",
        "on",
        "at",
        "by",
        "from",
        "which",
        "only",
        "also",
    ];
    let prose = WORDS.contains(&v.to_ascii_lowercase().as_str());
    (!prose && !benign(v, kind)).then_some((s, e))
}

/// The end of a value starting at `s`: the first byte where `stop(byte, next)` holds, with
/// backslash escapes skipped whole (never cut in half).
fn scan(b: &[u8], s: usize, stop: impl Fn(u8, Option<u8>) -> bool) -> usize {
    let mut p = s;
    while p < b.len() {
        let next = b.get(p + 1).copied();
        if stop(b[p], next) {
            return p;
        }
        p += if b[p] == b'\\' { 2 } else { 1 };
    }
    b.len().min(p)
}

#[path = "redact_multi.rs"]
mod multi;

#[cfg(test)]
#[path = "redact_tests.rs"]
mod tests;
