//! Making text safe to show: no secrets, no control characters, bounded length. The one
//! redactor of the project: the plugin cleans upstream text with it before it goes into an
//! error, and the conformance suite cleans its failure reports with it (a plugin under
//! test may put a token in a message). [`Secret`] holds a token, a device code or a key
//! so that it never reaches text in the first place.
#![deny(missing_docs)]

mod secret;

pub use secret::Secret;

/// Longest upstream message kept in an error (characters).
pub const MAX_MESSAGE_CHARS: usize = 300;

/// Shortest run of token-alphabet characters treated as a possible secret.
const TOKEN_LIKE_MIN: usize = 40;

/// Shortest piece of a known secret that is masked wherever it appears (an upstream may
/// echo a fragment of a token; shorter fragments carry too little to matter).
pub const SECRET_FRAGMENT_MIN: usize = 16;

/// Clean `text` for an error message: every occurrence of a `secrets` entry and every
/// long token-like word (JWTs, opaque tokens) becomes `[redacted]`, control characters
/// become spaces, and the result is cut to [`MAX_MESSAGE_CHARS`]. Redaction runs before
/// truncation so that a secret can never survive half-cut.
pub fn sanitize(text: &str, secrets: &[&str]) -> String {
    let s = redact(text, secrets);
    let cleaned: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    truncate(cleaned.trim(), MAX_MESSAGE_CHARS)
}

/// Mask `secrets` (and their pieces, see [`redact_secrets`]) and every token-shaped word
/// (long runs mixing letters and digits, JWTs), keeping everything else as it is.
pub fn redact(text: &str, secrets: &[&str]) -> String {
    redact_token_like(&redact_secrets(text, secrets))
}

/// Mask every occurrence of a secret and of any piece of one at least
/// [`SECRET_FRAGMENT_MIN`] bytes long (shorter secrets: whole occurrences only).
pub fn redact_secrets(text: &str, secrets: &[&str]) -> String {
    let bytes = text.as_bytes();
    let mut masked = vec![false; bytes.len()];
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        let sb = secret.as_bytes();
        if sb.len() < SECRET_FRAGMENT_MIN {
            for (i, _) in text.match_indices(secret) {
                masked[i..i + sb.len()].iter_mut().for_each(|m| *m = true);
            }
            continue;
        }
        // Every piece of >= N bytes is a chain of N-byte windows of the secret: mark each
        // window of the text that is one.
        let windows = Windows::of(sb);
        for (i, w) in bytes.windows(SECRET_FRAGMENT_MIN).enumerate() {
            if windows.contains(w) {
                masked[i..i + SECRET_FRAGMENT_MIN]
                    .iter_mut()
                    .for_each(|m| *m = true);
            }
        }
    }
    if !masked.contains(&true) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut in_mask = false;
    for (i, c) in text.char_indices() {
        // A character partly inside a masked range is masked whole.
        let hit = masked[i..i + c.len_utf8()].contains(&true);
        match (hit, in_mask) {
            (true, false) => out.push_str("[redacted]"),
            (false, _) => out.push(c),
            (true, true) => {}
        }
        in_mask = hit;
    }
    out
}

/// The [`SECRET_FRAGMENT_MIN`]-byte windows of a secret, as a set: each window read as a
/// `u128` (the same bytes, the same number) in an open-addressing table at most half full.
/// The plugin component's size matters: a `HashSet<&[u8]>` linked a general hash table
/// and SipHash just for this.
struct Windows {
    slots: Vec<Option<u128>>,
}

impl Windows {
    /// The windows of `secret` (at least [`SECRET_FRAGMENT_MIN`] bytes long).
    fn of(secret: &[u8]) -> Self {
        let count = secret.len() + 1 - SECRET_FRAGMENT_MIN;
        let mut set = Self {
            slots: vec![None; (2 * count).next_power_of_two()],
        };
        for w in secret.windows(SECRET_FRAGMENT_MIN) {
            let i = set.find(key(w));
            set.slots[i] = Some(key(w));
        }
        set
    }

    /// Whether `window` is one of them.
    fn contains(&self, window: &[u8]) -> bool {
        self.slots[self.find(key(window))].is_some()
    }

    /// The slot holding `k`, or the empty one where it would go (linear probing: the
    /// table is never full, so an empty slot ends every search).
    fn find(&self, k: u128) -> usize {
        let mask = self.slots.len() - 1;
        let h = (k as u64 ^ (k >> 64) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut i = (h >> 32) as usize & mask;
        while let Some(x) = self.slots[i] {
            if x == k {
                break;
            }
            i = (i + 1) & mask;
        }
        i
    }
}

/// A window of [`SECRET_FRAGMENT_MIN`] bytes as a number.
fn key(window: &[u8]) -> u128 {
    const { assert!(SECRET_FRAGMENT_MIN == 16) };
    let mut b = [0; 16];
    b.copy_from_slice(window);
    u128::from_le_bytes(b)
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
/// and digits (so long words and paths of plain prose survive), and JWT-shaped runs
/// (`eyJ…` with two dots) of any length.
fn redact_token_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        let looks_secret = (run.chars().count() >= TOKEN_LIKE_MIN
            && run.chars().any(|c| c.is_ascii_digit())
            && run.chars().any(|c| c.is_ascii_alphabetic()))
            || (run.starts_with("eyJ") && run.matches('.').count() >= 2);
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
    fn pieces_of_a_secret_are_masked_too() {
        let token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiIxMjMiLCJ0aWVyIjozfQ.c2lnbmF0dXJl";
        // A 30-character piece echoed inside prose, and two pieces side by side.
        let piece = &token[10..40];
        let m = sanitize(&format!("bad token '{piece}' rejected"), &[token]);
        assert_eq!(m, "bad token '[redacted]' rejected");
        let m = redact_secrets(&format!("{}+{}", &token[0..20], &token[30..50]), &[token]);
        assert_eq!(m, "[redacted]+[redacted]");
        // Fragments shorter than the minimum survive (they carry too little).
        let m = redact_secrets(&format!("x {} y", &token[0..12]), &[token]);
        assert!(m.contains(&token[0..12]), "{m}");
        // Short secrets are matched whole.
        assert_eq!(
            redact_secrets("id abc123 ok", &["abc123"]),
            "id [redacted] ok"
        );
    }

    #[test]
    fn the_window_set_holds_exactly_the_windows() {
        let secrets = [
            "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiIxMjMiLCJ0aWVyIjozfQ.c2lnbmF0dXJl".to_owned(),
            "s3cr3t-".repeat(60),
            "a".repeat(40),
            "0123456789abcdef".to_owned(),
            "clé-secrète-très-longue-ünïcödé".to_owned(),
        ];
        for secret in &secrets {
            let sb = secret.as_bytes();
            let set = Windows::of(sb);
            let text = format!(
                "{secret} {}{} aaaaaaaaaaaaaaaaaa x",
                &secrets[1][3..],
                &secrets[4]
            );
            for w in text.as_bytes().windows(SECRET_FRAGMENT_MIN) {
                let plain = sb.windows(SECRET_FRAGMENT_MIN).any(|s| s == w);
                assert_eq!(set.contains(w), plain, "{secret} {w:?}");
            }
        }
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
