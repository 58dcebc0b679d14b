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

    #[test]
    fn truncation_marks_the_cut() {
        assert_eq!(truncate_chars("abcdef", 3), "abc… [3 more bytes]");
        assert_eq!(truncate_chars("abc", 3), "abc");
    }
}
