//! Validation of tenant ids, keys and lock names: one set of rules for every backend. The
//! file store checks them before any path is built, so a name can never reach outside its
//! directory; a database backend checks them before any statement.

use super::error::SecretStoreError;

/// Longest tenant id.
pub const MAX_TENANT_LEN: usize = 64;
/// Longest key or lock name.
pub const MAX_KEY_LEN: usize = 128;
/// How much of a rejected name an error message repeats.
const ECHO_LEN: usize = 80;

/// Why `name` is not acceptable, or `None` when it is.
fn problem(name: &str, max_len: usize, allowed: fn(u8) -> bool) -> Option<&'static str> {
    if name.is_empty() {
        Some("must not be empty")
    } else if name.len() > max_len {
        Some("is too long")
    } else if name.starts_with('.') {
        Some("must not start with '.'")
    } else if !name.bytes().all(allowed) {
        Some("contains a character that is not allowed")
    } else {
        None
    }
}

/// The name as an error message may show it: escaped and truncated.
fn echo(name: &str) -> String {
    let mut shown: String = name.chars().take(ECHO_LEN).collect();
    if shown.len() < name.len() {
        shown.push('…');
    }
    format!("{shown:?}")
}

fn tenant_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')
}

fn key_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
}

/// Checks a tenant id: `[A-Za-z0-9._-]`, 1 to 64 characters, not starting with `.`.
pub fn validate_tenant(id: &str) -> Result<(), SecretStoreError> {
    match problem(id, MAX_TENANT_LEN, tenant_byte) {
        None => Ok(()),
        Some(why) => Err(SecretStoreError::InvalidTenant(format!(
            "{} {why} (allowed: A-Z, a-z, 0-9, '.', '_', '-'; 1 to {MAX_TENANT_LEN} characters; \
             not starting with '.')",
            echo(id)
        ))),
    }
}

/// Whether `name` is a valid key or lock name.
pub fn is_valid_key(name: &str) -> bool {
    problem(name, MAX_KEY_LEN, key_byte).is_none()
}

/// Whether some valid key starts with `prefix` (the empty prefix included). A `list_keys`
/// prefix for which this is false matches nothing, so a backend can answer it without asking
/// its storage; one for which it is true holds only key characters, none special in a SQL
/// `LIKE` pattern but `_`.
pub fn could_prefix_a_key(prefix: &str) -> bool {
    prefix.len() <= MAX_KEY_LEN && !prefix.starts_with('.') && prefix.bytes().all(key_byte)
}

/// Checks a key or lock name (`what` is "key" or "lock name"): `[a-z0-9._-]`, 1 to 128
/// characters, not starting with `.`.
pub fn validate_key(name: &str, what: &str) -> Result<(), SecretStoreError> {
    match problem(name, MAX_KEY_LEN, key_byte) {
        None => Ok(()),
        Some(why) => Err(SecretStoreError::InvalidKey(format!(
            "{what} {} {why} (allowed: a-z, 0-9, '.', '_', '-'; 1 to {MAX_KEY_LEN} characters; \
             not starting with '.')",
            echo(name)
        ))),
    }
}
