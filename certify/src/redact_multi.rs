//! The redactions that span lines or see through an escaping: PEM private keys (whole or
//! cut short), YAML block scalars under a secret key, Kubernetes `env` entries whose value
//! follows their name, and HTML/XML character references.

use super::{Edits, Origins, marker, replace, secret_kind, value_span};

/// A line break as written in the text: a real one, one escaped in a (possibly nested)
/// JSON string (`\n`, `\\n`, `\r\n`), or an XML/HTML character reference (`&#10;`,
/// `&#xA;`). Its length in bytes, 0 if none starts `s`.
fn line_break(s: &str) -> usize {
    let b = s.as_bytes();
    match b.first() {
        Some(b'\n') => 1,
        Some(b'\r') if b.get(1) == Some(&b'\n') => 2,
        Some(b'\\') => {
            let n = b.iter().take_while(|c| **c == b'\\').count();
            match b.get(n) {
                Some(b'n') => n + 1,
                Some(b'r') => n + 1 + line_break(&s[n + 1..]),
                _ => 0,
            }
        }
        Some(b'&') => ["&#10;", "&#xA;", "&#xa;", "&#13;", "&#xD;", "&#xd;"]
            .iter()
            .find(|e| s.starts_with(**e))
            .map_or(0, |e| e.len() + line_break(&s[e.len()..])),
        _ => 0,
    }
}

fn is_base64(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'+' || c == b'/' || c == b'='
}

/// `-----BEGIN … PRIVATE KEY-----` … `-----END …`: the body goes, line breaks and the
/// indentation of every line stay. A key cut short (no END before the next BEGIN) loses
/// the base64 lines after its header, up to the syntax around it (a quote, an escaped
/// quote, `<`, `&`) or the first line that is not base64; that syntax always stays.
pub(super) fn pem_blocks(text: &str, found: &mut Vec<(usize, &'static str)>) -> String {
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
        let after = &rest[header_end..];
        let end = after
            .find("-----END ")
            .filter(|n| !after[..*n].contains("-----BEGIN "));
        let body_len = match end {
            Some(n) => {
                whole_body(&after[..n], &mut out);
                n
            }
            None => cut_body(after, &mut out),
        };
        rest = &after[body_len..];
    }
    out.push_str(rest);
    out
}

/// A body up to its END line: one marker, the line breaks and indentation kept.
fn whole_body(body: &str, out: &mut String) {
    let mut first = true;
    for (i, seg) in body.split('\n').enumerate() {
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
}

/// A body without END: writes what stays of it and returns how much of `body` it covered.
fn cut_body(body: &str, out: &mut String) -> usize {
    let (mut p, mut marked, mut content_on_line) = (0, false, false);
    loop {
        let blanks = body[p..]
            .bytes()
            .take_while(|c| *c == b' ' || *c == b'\t')
            .count();
        let lb = line_break(&body[p + blanks..]);
        if lb > 0 {
            // A blank line after the body ends it.
            if marked && !content_on_line {
                break;
            }
            out.push_str(&body[p..p + blanks + lb]);
            p += blanks + lb;
            content_on_line = false;
            continue;
        }
        let run = body[p + blanks..]
            .bytes()
            .take_while(|c| is_base64(*c))
            .count();
        if run == 0 {
            break;
        }
        let tail = &body[p + blanks + run..];
        let trail = tail
            .bytes()
            .take_while(|c| *c == b' ' || *c == b'\t')
            .count();
        let next = &tail[trail..];
        let ends_line = next.is_empty() || line_break(next) > 0;
        let syntax = !ends_line
            && matches!(
                next.as_bytes()[0],
                b'"' | b'\'' | b'\\' | b'<' | b'&' | b',' | b'}' | b']' | b')'
            );
        if !ends_line && !syntax {
            // Prose (`truncated here!`): not a key's body.
            break;
        }
        out.push_str(&body[p..p + blanks]);
        if !marked {
            out.push_str(&marker("private-key"));
            marked = true;
        }
        p += blanks + run;
        content_on_line = true;
        if syntax {
            break;
        }
    }
    if !marked {
        out.push_str(&marker("private-key"));
    }
    p
}

/// The character references HTML and XML writers use for quotes and markup.
const ENTITIES: &[(&str, u8)] = &[
    ("&#34;", b'"'),
    ("&quot;", b'"'),
    ("&#x22;", b'"'),
    ("&#39;", b'\''),
    ("&apos;", b'\''),
    ("&#x27;", b'\''),
    ("&lt;", b'<'),
    ("&#60;", b'<'),
    ("&gt;", b'>'),
    ("&#62;", b'>'),
    ("&amp;", b'&'),
    ("&#38;", b'&'),
    ("&#10;", b'\n'),
    ("&#xA;", b'\n'),
    ("&#xa;", b'\n'),
    ("&#9;", b'\t'),
];

/// `line` with its character references resolved, and per byte the range of the
/// original it came from; `None` if it has none.
pub(super) fn decode_entities(line: &str) -> Option<(String, Origins)> {
    if !line.contains("&") {
        return None;
    }
    let b = line.as_bytes();
    let (mut out, mut src, mut any, mut i) = (Vec::new(), Vec::new(), false, 0);
    while i < b.len() {
        if b[i] == b'&'
            && let Some((e, c)) = ENTITIES.iter().find(|(e, _)| line[i..].starts_with(e))
        {
            out.push(*c);
            src.push(Some((i, i + e.len())));
            i += e.len();
            any = true;
            continue;
        }
        out.push(b[i]);
        src.push(Some((i, i + 1)));
        i += 1;
    }
    // Only ASCII replaced ASCII, so the bytes are still UTF-8.
    any.then(|| String::from_utf8(out).ok().map(|s| (s, src)))
        .flatten()
}

/// Where the token `name` (a whole key-like word) is in `b` from `from`.
fn find_token(b: &[u8], name: &str, from: usize) -> Option<(usize, usize)> {
    let mut i = from;
    while i < b.len() {
        if super::is_key_char(b[i]) && (i == 0 || !super::is_key_char(b[i - 1])) {
            let j = i + b[i..]
                .iter()
                .take_while(|c| super::is_key_char(**c))
                .count();
            if &b[i..j] == name.as_bytes() {
                return Some((i, j));
            }
            i = j;
        } else {
            i += 1;
        }
    }
    None
}

/// What spans lines: a YAML block scalar being removed, an env entry whose value is due.
#[derive(Default)]
pub(super) struct State {
    /// (indentation of its key, kind, whether the marker was written)
    block: Option<(usize, &'static str, bool)>,
    /// (kind of the env entry's name, lines left to find its `value`)
    env: Option<(&'static str, usize)>,
}

fn indentation(s: &str) -> usize {
    s.len() - s.trim_start_matches([' ', '\t']).len()
}

impl State {
    /// A line of a block scalar under a secret key: its content goes (one marker on its
    /// first line). `None` when `line` is not one.
    pub(super) fn block_body(
        &mut self,
        line: &str,
        kinds: &mut Vec<&'static str>,
    ) -> Option<String> {
        let (indent, kind, marked) = self.block?;
        let content = line.trim_end_matches(['\n', '\r']);
        if content.trim().is_empty() {
            return Some(line.to_owned());
        }
        let ind = indentation(content);
        if ind <= indent {
            self.block = None;
            return None;
        }
        if !marked && super::benign(content.trim(), kind) {
            // A placeholder (`${TOKEN}`), not a secret.
            self.block = None;
            return Some(line.to_owned());
        }
        let mut l = content[..ind].to_owned();
        if !marked {
            l.push_str(&marker(kind));
            kinds.push(kind);
            self.block = Some((indent, kind, true));
        }
        l.push_str(&line[content.len()..]);
        Some(l)
    }

    /// After the single-line passes over `line` (now `l`): a block scalar starting, an env
    /// entry's name or its value.
    pub(super) fn after_line(&mut self, line: &str, l: &mut String, kinds: &mut Vec<&'static str>) {
        if let Some(start) = block_start(line) {
            self.block = Some((start.0, start.1, false));
            self.env = None;
            return;
        }
        let mut ed = Edits { kinds, src: None };
        let mut from = 0;
        if self.env.is_some() {
            // Another entry's name, before any value on the line: the entry awaiting its
            // value had none (a JUnit testcase named `kolla.api.token-issue`, then
            // `<property name="requirements" value=…>`). A value first is the awaited one
            // (`"value": "…"}, {"name": …`).
            let b = l.as_bytes();
            let name = find_token(b, "name", 0)
                .filter(|&(s, e)| value_span(b, s, e, "name").is_some())
                .map(|(s, _)| s);
            let value = find_token(b, "value", 0).map(|(s, _)| s);
            if name.is_some_and(|n| value.is_none_or(|v| n < v)) {
                self.env = None;
            }
        }
        if self.env.is_none()
            && let Some((kind, at)) = env_name(l.as_bytes())
        {
            self.env = Some((kind, 3));
            from = at;
        }
        let Some((kind, left)) = self.env else {
            return;
        };
        if find_token(l.as_bytes(), "valueFrom", from).is_some() {
            self.env = None;
            return;
        }
        if let Some((s, e)) = find_token(l.as_bytes(), "value", from)
            && let Some((vs, ve)) = value_span(l.as_bytes(), s, e, kind)
        {
            replace(l, vs, ve, kind, &mut ed);
            self.env = None;
            return;
        }
        self.env = (left > 1).then_some((kind, left - 1));
    }
}

/// `- name: OS_PASSWORD`, `"name": "OS_PASSWORD",`: the kind of secret the entry holds and
/// where its name ends.
fn env_name(b: &[u8]) -> Option<(&'static str, usize)> {
    let (s, e) = find_token(b, "name", 0)?;
    let (vs, ve) = value_span(b, s, e, "name")?;
    let v = std::str::from_utf8(&b[vs..ve]).ok()?;
    if v.is_empty() || !v.bytes().all(super::is_key_char) {
        return None;
    }
    Some((secret_kind(v)?, ve))
}

/// `token: >-`, `password: |`: a block scalar under a secret key; its key's indentation and
/// the kind.
fn block_start(line: &str) -> Option<(usize, &'static str)> {
    let body = line.trim_end();
    let indent = indentation(body);
    let mut rest = &body[indent..];
    rest = rest.strip_prefix("- ").map_or(rest, str::trim_start);
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'');
    if let Some(q) = quote {
        rest = &rest[1..];
        let end = rest.find(q)?;
        let (key, after) = rest.split_at(end);
        return block_rest(&after[1..]).then_some((indent, secret_kind(key)?));
    }
    let end = rest.find(':')?;
    let (key, after) = rest.split_at(end);
    if key.is_empty() || !key.bytes().all(super::is_key_char) {
        return None;
    }
    block_rest(after).then_some((indent, secret_kind(key)?))
}

/// `: |`, `: >-`, `: |2 # comment`.
fn block_rest(s: &str) -> bool {
    let Some(s) = s.strip_prefix(':') else {
        return false;
    };
    let s = s.trim_start();
    let Some(s) = s.strip_prefix(['|', '>']) else {
        return false;
    };
    let s = s.trim_start_matches(['-', '+', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    let s = s.trim();
    s.is_empty() || s.starts_with('#')
}
