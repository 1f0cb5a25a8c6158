//! The plugin component built with this crate (by `build.rs`): xAI's, embedded so that an
//! installed CLI or Python package needs nothing from the checkout it was built in.

use provider_runtime::PluginSource;

/// The plugin component's bytes.
static EMBEDDED_PLUGIN: &[u8] = include_bytes!(env!("PROVIDER_PLUGIN_COMPONENT"));
/// Its SHA-256, computed at build time.
const EMBEDDED_PLUGIN_SHA256: [u8; 32] = hex32(env!("PROVIDER_PLUGIN_SHA256"));

const fn hex32(s: &str) -> [u8; 32] {
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("PROVIDER_PLUGIN_SHA256 is not lower-case hex"),
        }
    }
    let b = s.as_bytes();
    assert!(
        b.len() == 64,
        "PROVIDER_PLUGIN_SHA256 is not 32 bytes of hex"
    );
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = nibble(b[2 * i]) << 4 | nibble(b[2 * i + 1]);
        i += 1;
    }
    out
}

/// The embedded component as a runtime source (its digest known, so it is never hashed).
pub fn embedded() -> PluginSource {
    PluginSource::Static {
        bytes: EMBEDDED_PLUGIN,
        sha256: EMBEDDED_PLUGIN_SHA256,
    }
}

/// Size of the embedded component in bytes.
pub fn embedded_len() -> usize {
    EMBEDDED_PLUGIN.len()
}

/// The embedded component's SHA-256, lower-case hex.
pub fn embedded_sha256() -> &'static str {
    env!("PROVIDER_PLUGIN_SHA256")
}
