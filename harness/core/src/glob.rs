//! Glob patterns for `--filter` and `--skip`: `*` matches any run of characters
//! (including dots), `?` one character. Everything else is literal.

/// Whether `pattern` matches the whole of `text`.
pub fn matches(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative matcher with backtracking to the last `*`: linear in practice, no recursion.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        // `*` first: a `*` in the pattern is a wildcard even where the text has a `*`.
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn globs() {
        assert!(matches("host.*", "host.kernel.version"));
        assert!(matches("*.version", "host.kernel.version"));
        assert!(matches("ra2.ch.00?", "ra2.ch.001"));
        assert!(matches("ra2.k8s.012#*", "ra2.k8s.012#2"));
        assert!(!matches("host.*", "cni.bridge.add"));
        assert!(!matches("ra2.ch.00?", "ra2.ch.0011"));
        assert!(matches("*", ""));
        assert!(matches("a*b*c", "axxbyyc"));
        assert!(!matches("a*b*c", "axxbyy"));
        // A `*` in the text is matched by the wildcard like any other character.
        assert!(matches("a*c", "a*xc"));
        assert!(matches("*", "*"));
        assert!(matches("x*", "x**"));
    }
}
