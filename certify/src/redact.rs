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
    let text = pem_blocks(text, &mut found);
    let mut out = String::with_capacity(text.len());
    for (n, line) in text.split_inclusive('\n').enumerate() {
        let mut kinds = Vec::new();
        let mut l = line.to_owned();
        jwts(&mut l, &mut kinds);
        url_passwords(&mut l, &mut kinds);
        key_values(&mut l, &mut kinds);
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

/// `-----BEGIN … PRIVATE KEY-----` … `-----END …`: the body goes, line breaks and the
/// indentation of every line stay.
fn pem_blocks(text: &str, found: &mut Vec<(usize, &'static str)>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("-----BEGIN ") {
        let label_start = at + "-----BEGIN ".len();
        let Some(label_len) = rest[label_start..].find("-----").filter(|n| *n <= 48) else {
            out.push_str(&rest[..label_start]);
            rest = &rest[label_start..];
            continue;
        };
        let header_end = label_start + label_len + 5;
        out.push_str(&rest[..header_end]);
        if !rest[label_start..label_start + label_len].contains("PRIVATE KEY") {
            rest = &rest[header_end..];
            continue;
        }
        let line = text[..text.len() - rest.len() + at].matches('\n').count() + 1;
        found.push((line, "private-key"));
        let body_end = match rest[header_end..].find("-----END ") {
            Some(n) => header_end + n,
            // Cut short: the header's line and the base64 lines after it.
            None => {
                let mut end = header_end;
                for l in rest[header_end..].split_inclusive('\n') {
                    let body = l.trim();
                    let base64ish = body
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"+/=\\".contains(&b));
                    if end > header_end && !base64ish {
                        break;
                    }
                    end += l.len();
                }
                end
            }
        };
        let mut first = true;
        for (i, seg) in rest[header_end..body_end].split('\n').enumerate() {
            if i > 0 {
                out.push('\n');
            }
            let content = seg.trim_start();
            out.push_str(&seg[..seg.len() - content.len()]);
            let content_trimmed = content.trim_end();
            if !content_trimmed.is_empty() && first {
                out.push_str(&marker("private-key"));
                first = false;
            }
            out.push_str(&content[content_trimmed.len()..]);
        }
        if first {
            out.push_str(&marker("private-key"));
        }
        rest = &rest[body_end..];
    }
    out.push_str(rest);
    out
}

fn is_b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// `eyJ…`.`…`.`…` (a JWT: its header is base64url of `{"`).
fn jwts(line: &mut String, kinds: &mut Vec<&'static str>) {
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
        let m = marker("jwt");
        line.replace_range(start..e3, &m);
        kinds.push("jwt");
        from = start + m.len();
    }
}

/// `scheme://user:password@host`: the password goes.
fn url_passwords(line: &mut String, kinds: &mut Vec<&'static str>) {
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
        let m = marker("url-password");
        line.replace_range(auth_start + colon + 1..auth_start + at, &m);
        kinds.push("url-password");
        from = auth_start + colon + 1 + m.len();
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
    if k.len() > 48 || generated {
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
        || (k.starts_with("ansible") && k.ends_with("_pass"))
        || k.ends_with("sudo_pass")
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

/// Whether byte `pos` is inside a double-quoted string (odd number of unescaped quotes
/// before it).
fn in_string(b: &[u8], pos: usize) -> bool {
    let (mut inside, mut i) = (false, 0);
    while i < pos {
        match b[i] {
            b'\\' => i += 1,
            b'"' => inside = !inside,
            _ => {}
        }
        i += 1;
    }
    inside
}

/// `KEY: value`, `KEY=value`, `"KEY": "value"`, `KEY = "value"`, with a secret-looking KEY.
fn key_values(line: &mut String, kinds: &mut Vec<&'static str>) {
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
        let Some((start, end)) = value_span(b, i, j, kind) else {
            i = j;
            continue;
        };
        let m = marker(kind);
        line.replace_range(start..end, &m);
        kinds.push(kind);
        i = start + m.len();
    }
}

fn value_span(b: &[u8], key_start: usize, key_end: usize, kind: &str) -> Option<(usize, usize)> {
    let quoted_key = key_start > 0 && b[key_start - 1] == b'"';
    let outer = in_string(b, if quoted_key { key_start - 1 } else { key_start });
    let mut k = key_end;
    if quoted_key {
        if b.get(k) == Some(&b'"') {
            k += 1;
        } else if b.get(k) == Some(&b'\\') && b.get(k + 1) == Some(&b'"') {
            k += 2;
        }
    }
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
    // or `host:port` is no key. A quoted key (`"password":"x"`) needs none.
    if sep == b':' && !quoted_key && !b.get(k + 1).is_some_and(|c| *c == b' ' || *c == b'\t') {
        return None;
    }
    k = skip_ws(k + 1);
    let json_line = matches!(
        b.iter().find(|c| !c.is_ascii_whitespace()),
        Some(b'{' | b'[' | b'"')
    );
    let (start, end) = match b.get(k)? {
        b'"' if !outer => {
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
        b'\'' => {
            let s = k + 1;
            (s, scan(b, s, |c, _| c == b'\'' || c == b'"'))
        }
        b'"' | b'{' | b'[' | b'|' | b'>' => return None,
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
            let words = sep == b':' && !outer && !json_line;
            let e = scan(b, s, |c, next| {
                c == b'"'
                    || c == b'\n'
                    || c == b'\r'
                    || (c == b'\\' && next == Some(b'"') && outer)
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
    let lower = v.to_ascii_lowercase();
    let json_number = quoted_key
        && v.bytes()
            .all(|c| c.is_ascii_digit() || c == b'.' || c == b'-');
    let benign = v.is_empty()
        || json_number
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
            && (v.starts_with('/') || v.ends_with(".key") || v.ends_with(".pem")));
    (!benign).then_some((start, end))
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

#[cfg(test)]
#[path = "redact_tests.rs"]
mod tests;
