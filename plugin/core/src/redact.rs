//! Making upstream text safe to put in an error: no secrets, no control characters,
//! bounded length.

/// Longest upstream message kept in an error (characters).
pub const MAX_MESSAGE_CHARS: usize = 300;

/// Shortest run of token-alphabet characters treated as a possible secret.
const TOKEN_LIKE_MIN: usize = 40;

/// Clean `text` for an error message: every occurrence of a `secrets` entry and every
/// long token-like word (JWTs, opaque tokens) becomes `[redacted]`, control characters
/// become spaces, and the result is cut to [`MAX_MESSAGE_CHARS`]. Redaction runs before
/// truncation so that a secret can never survive half-cut.
pub fn sanitize(text: &str, secrets: &[&str]) -> String {
    let mut s = text.to_owned();
    for secret in secrets {
        if !secret.is_empty() {
            s = s.replace(secret, "[redacted]");
        }
    }
    let s = redact_token_like(&s);
    let cleaned: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    truncate(cleaned.trim(), MAX_MESSAGE_CHARS)
}

/// Cut to `max` characters, marking the cut with `…`.
pub fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~' | '+' | '/' | '=')
}

/// Replace runs of at least [`TOKEN_LIKE_MIN`] token-alphabet characters that mix letters
/// and digits (so long words and paths of plain prose survive).
fn redact_token_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        let looks_secret = run.chars().count() >= TOKEN_LIKE_MIN
            && run.chars().any(|c| c.is_ascii_digit())
            && run.chars().any(|c| c.is_ascii_alphabetic());
        if looks_secret {
            out.push_str("[redacted]");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in s.chars() {
        if is_token_char(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_secrets_and_token_like_words() {
        let jwt = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJlc2lnbmF0dXJl";
        let m = sanitize(
            &format!("bad token {jwt} for short-secret-1"),
            &["short-secret-1"],
        );
        assert!(!m.contains(jwt) && !m.contains("short-secret-1"), "{m}");
        assert_eq!(m, "bad token [redacted] for [redacted]");
        // Ordinary text survives.
        assert_eq!(
            sanitize("The caller does not have permission", &[]),
            "The caller does not have permission"
        );
        assert_eq!(sanitize("a\nb\u{0}c", &[]), "a b c");
    }

    #[test]
    fn truncates_after_redacting() {
        let long = "x".repeat(1000);
        let m = sanitize(&long, &[]);
        assert_eq!(m.chars().count(), MAX_MESSAGE_CHARS + 1);
        let secret = "s3cr3t-".repeat(60);
        let m = sanitize(&format!("{} {secret}", "y".repeat(290)), &[&secret]);
        assert!(!m.contains("s3cr3t"), "{m}");
        assert_eq!(truncate("héllo", 2), "hé…");
    }
}
