//! Turning untrusted bytes (plugin output, command output) into evidence text.

/// Converts bytes to a string that keeps every byte as evidence: valid UTF-8 is kept as is,
/// invalid bytes become `\xNN`. Control characters stay; each report escapes or filters them
/// for its own format.
pub fn bytes_to_evidence(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// Shortens `s` to at most `max` characters, marking the cut.
pub fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_owned(),
        Some((i, _)) => format!("{}… [{} more bytes]", &s[..i], s.len() - i),
    }
}

/// An error and its causes, `: `-joined, leaving out a cause whose text is already there
/// (many libraries repeat their source in their own message).
pub fn error_with_causes(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_utf8_is_kept_as_escapes() {
        assert_eq!(
            bytes_to_evidence(b"ok \xff\xfe \x1b[31mred"),
            "ok \\xff\\xfe \x1b[31mred"
        );
    }

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as _)
        }
    }

    #[test]
    fn causes_are_joined_once() {
        let root = Layer("connection refused", None);
        let repeated = Layer("tcp connect: connection refused", Some(Box::new(root)));
        let top = Layer("request failed", Some(Box::new(repeated)));
        assert_eq!(
            error_with_causes(&top),
            "request failed: tcp connect: connection refused"
        );
    }

    #[test]
    fn truncation_marks_the_cut() {
        assert_eq!(truncate_chars("abcdef", 3), "abc… [3 more bytes]");
        assert_eq!(truncate_chars("abc", 3), "abc");
    }
}
