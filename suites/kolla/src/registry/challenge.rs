//! `WWW-Authenticate` challenges (RFC 7235 §2.1, §4.1): a comma-separated list of
//! `scheme [token68 | #auth-param]`, where an auth-param's value is a token or a
//! quoted-string (backslash escapes, commas kept). Hand-written: no crate in the tree parses
//! it, and the grammar is small.

/// One challenge: the scheme (lowercase) and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Challenge {
    /// `basic`, `bearer`, ... (schemes are case-insensitive).
    pub(super) scheme: String,
    /// `token68` credentials-style data, when the challenge carries that instead of params.
    pub(super) token68: Option<String>,
    /// (name lowercase, value unquoted and unescaped), in header order.
    pub(super) params: Vec<(String, String)>,
}

impl Challenge {
    /// The first value of parameter `name` (lowercase).
    pub(super) fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

fn is_token68_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~+/".contains(c)
}

/// A cursor over the header's characters; every read is bounds-checked.
struct Cursor {
    chars: Vec<char>,
    at: usize,
}

impl Cursor {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn peek_at(&self, i: usize) -> Option<char> {
        self.chars.get(i).copied()
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.at += 1;
        }
    }

    fn token(&mut self) -> String {
        let start = self.at;
        while self.peek().is_some_and(is_tchar) {
            self.at += 1;
        }
        self.chars[start..self.at].iter().collect()
    }

    /// Whether an auth-param (`token BWS "="`) starts here, the `=` not being token68
    /// padding (which is followed by another `=`, a comma or the end).
    fn auth_param_ahead(&self) -> bool {
        let mut i = self.at;
        while self.peek_at(i).is_some_and(is_tchar) {
            i += 1;
        }
        if i == self.at {
            return false;
        }
        while matches!(self.peek_at(i), Some(' ' | '\t')) {
            i += 1;
        }
        if self.peek_at(i) != Some('=') {
            return false;
        }
        let mut j = i + 1;
        while matches!(self.peek_at(j), Some(' ' | '\t')) {
            j += 1;
        }
        !matches!(self.peek_at(j), None | Some(',' | '='))
    }

    /// A quoted-string after its opening quote, unescaped.
    fn quoted(&mut self) -> Result<String, String> {
        let start = self.at;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err(format!("a quoted string opened at {start} is not closed")),
                Some('"') => {
                    self.at += 1;
                    return Ok(out);
                }
                Some('\\') => {
                    let Some(c) = self.peek_at(self.at + 1) else {
                        return Err(format!("a quoted string opened at {start} is not closed"));
                    };
                    out.push(c);
                    self.at += 2;
                }
                Some(c) if c.is_control() && c != '\t' => {
                    return Err(format!(
                        "a control character in the quoted string at {start}"
                    ));
                }
                Some(c) => {
                    out.push(c);
                    self.at += 1;
                }
            }
        }
    }
}

/// Parses a `WWW-Authenticate` header value into its challenges. Malformed input is an error
/// saying where (a character offset), never a panic.
pub(crate) fn parse(header: &str) -> Result<Vec<Challenge>, String> {
    let mut c = Cursor {
        chars: header.chars().collect(),
        at: 0,
    };
    let mut out: Vec<Challenge> = Vec::new();
    loop {
        // Empty list elements are allowed (`1#` rule, RFC 7230 §7).
        while matches!(c.peek(), Some(' ' | '\t' | ',')) {
            c.at += 1;
        }
        let Some(next) = c.peek() else { break };
        let in_challenge = !out.is_empty() && c.auth_param_ahead();
        if in_challenge {
            if out.last().is_some_and(|l| l.token68.is_some()) {
                return Err(format!(
                    "a parameter at {} follows token68 data, which takes none",
                    c.at
                ));
            }
            let name = c.token().to_ascii_lowercase();
            c.skip_ows();
            c.at += 1; // the `=` auth_param_ahead saw
            c.skip_ows();
            let value = if c.peek() == Some('"') {
                c.at += 1;
                c.quoted()?
            } else {
                let v = c.token();
                if v.is_empty() {
                    return Err(format!("the parameter `{name}` has no value at {}", c.at));
                }
                v
            };
            if let Some(last) = out.last_mut() {
                last.params.push((name, value));
            }
        } else {
            let scheme = c.token();
            if scheme.is_empty() {
                return Err(format!(
                    "expected an authentication scheme at {}, found `{next}`",
                    c.at
                ));
            }
            let mut challenge = Challenge {
                scheme: scheme.to_ascii_lowercase(),
                token68: None,
                params: Vec::new(),
            };
            if matches!(c.peek(), Some(' ' | '\t')) {
                c.skip_ows();
                if !c.auth_param_ahead() && c.peek().is_some_and(is_token68_char) {
                    let start = c.at;
                    while c.peek().is_some_and(is_token68_char) {
                        c.at += 1;
                    }
                    while c.peek() == Some('=') {
                        c.at += 1;
                    }
                    challenge.token68 = Some(c.chars[start..c.at].iter().collect());
                }
            }
            out.push(challenge);
            // The first param follows the scheme without a comma.
            if c.auth_param_ahead() {
                continue;
            }
        }
        c.skip_ows();
        match c.peek() {
            None | Some(',') => {}
            Some(x) => return Err(format!("unexpected `{x}` at {}", c.at)),
        }
    }
    if out.is_empty() {
        return Err("no challenge".to_owned());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(c: &Challenge) -> Vec<(&str, &str)> {
        c.params
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn challenges_parse_with_quoting_respected() {
        type Row<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);
        let rows: &[Row] = &[
            (
                r#"Bearer realm="https://r/token",service="registry",scope="repository:x:pull,push""#,
                "bearer",
                &[
                    ("realm", "https://r/token"),
                    ("service", "registry"),
                    ("scope", "repository:x:pull,push"),
                ],
            ),
            (
                r#"Basic realm="Registry Realm""#,
                "basic",
                &[("realm", "Registry Realm")],
            ),
            (
                r#"Bearer realm="a \"quoted\" realm, with a comma",error=invalid_token"#,
                "bearer",
                &[
                    ("realm", r#"a "quoted" realm, with a comma"#),
                    ("error", "invalid_token"),
                ],
            ),
            (
                r#"Bearer realm="C:\\path\x""#,
                "bearer",
                &[("realm", r"C:\pathx")],
            ),
            (
                "  BEARER   Realm = \"https://r/token\" ,\t Service=registry  ,  ",
                "bearer",
                &[("realm", "https://r/token"), ("service", "registry")],
            ),
            (
                r#"Bearer realm="r",charset="UTF-8",x-unknown=1,scope="""#,
                "bearer",
                &[
                    ("realm", "r"),
                    ("charset", "UTF-8"),
                    ("x-unknown", "1"),
                    ("scope", ""),
                ],
            ),
            ("Negotiate", "negotiate", &[]),
            (
                r#"Bearer realm="ünïcødé""#,
                "bearer",
                &[("realm", "ünïcødé")],
            ),
        ];
        for (header, scheme, want) in rows {
            let got = parse(header).unwrap_or_else(|e| panic!("{header}: {e}"));
            assert_eq!(got.len(), 1, "{header}: {got:?}");
            assert_eq!(got[0].scheme, *scheme, "{header}");
            assert_eq!(params(&got[0]), *want, "{header}");
        }
    }

    #[test]
    fn several_challenges_and_token68_are_told_apart() {
        let got = parse(
            r#"Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple""#,
        )
        .expect("RFC 7235 §4.1 example");
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].scheme, "newauth");
        assert_eq!(
            params(&got[0]),
            [
                ("realm", "apps"),
                ("type", "1"),
                ("title", r#"Login to "apps""#)
            ]
        );
        assert_eq!(got[1].scheme, "basic");
        assert_eq!(got[1].param("realm"), Some("simple"));
        let got = parse("Negotiate abc+/d==, Bearer realm=\"r\"").expect("token68");
        assert_eq!(got[0].token68.as_deref(), Some("abc+/d=="));
        assert!(got[0].params.is_empty());
        assert_eq!(got[1].param("realm"), Some("r"));
        // `realm=` with nothing after it is token68 data by the grammar, not a parameter.
        let got = parse("Bearer realm=").expect("token68");
        assert_eq!(got[0].token68.as_deref(), Some("realm="));
        assert_eq!(got[0].param("realm"), None);
        let got = parse("Negotiate, Basic").expect("bare schemes");
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn malformed_headers_are_errors_not_panics() {
        let rows = [
            ("", "no challenge"),
            (" , ,", "no challenge"),
            (r#"Bearer realm="https://r/token"#, "not closed"),
            (r#"Bearer realm="x\"#, "not closed"),
            ("Bearer realm=,scope=x", "follows token68 data"),
            ("Negotiate abc==, realm=\"r\"", "follows token68 data"),
            (r#"Bearer realm="r" junk"#, "unexpected `j`"),
            (r#"="x""#, "expected an authentication scheme at 0"),
            ("Bearer realm=\"a\u{7}b\"", "control character"),
            ("Bearer \"quoted\"", "unexpected `\"`"),
        ];
        for (header, part) in rows {
            let e = parse(header).expect_err(header);
            assert!(e.contains(part), "{header}: {e}");
        }
        // Every prefix of a valid header, and some noise, parse or fail without panicking.
        let good =
            r#"Bearer realm="https://r/token",service="registry",scope="repository:x:pull,push""#;
        for (i, _) in good.char_indices() {
            let _ = parse(&good[..i]);
        }
        for noise in [
            "\"",
            "\\",
            "=",
            ",=,",
            "a=\"",
            "ü=ü",
            "\u{0}",
            "Bearer ===",
            "B a=b=c",
        ] {
            let _ = parse(noise);
        }
    }
}
