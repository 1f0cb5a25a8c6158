//! Where the plugin component comes from: a file, bytes held by the embedder, or bytes
//! compiled into the program.

use std::path::PathBuf;
use std::sync::Arc;

/// Where the plugin component comes from.
#[derive(Clone)]
pub enum PluginSource {
    /// A `.wasm` file, read when first needed (its digest memoised in the compile cache).
    File(PathBuf),
    /// Component bytes held by the embedder.
    Bytes(Arc<[u8]>),
    /// Bytes compiled into the program, with their SHA-256 computed at build time (so a
    /// CLI call neither reads nor hashes the component).
    Static {
        /// The component.
        bytes: &'static [u8],
        /// Its SHA-256.
        sha256: [u8; 32],
    },
}

impl std::fmt::Debug for PluginSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(p) => f.debug_tuple("File").field(p).finish(),
            Self::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            Self::Static { bytes, .. } => write!(f, "Static({} bytes)", bytes.len()),
        }
    }
}

impl std::fmt::Display for PluginSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(p) => write!(f, "{}", p.display()),
            Self::Bytes(_) => f.write_str("the given component"),
            Self::Static { .. } => f.write_str("the embedded component"),
        }
    }
}

impl From<PathBuf> for PluginSource {
    fn from(p: PathBuf) -> Self {
        Self::File(p)
    }
}

impl From<&std::path::Path> for PluginSource {
    fn from(p: &std::path::Path) -> Self {
        Self::File(p.to_path_buf())
    }
}

impl From<&PathBuf> for PluginSource {
    fn from(p: &PathBuf) -> Self {
        Self::File(p.clone())
    }
}

impl From<&str> for PluginSource {
    fn from(p: &str) -> Self {
        Self::File(p.into())
    }
}

impl From<String> for PluginSource {
    fn from(p: String) -> Self {
        Self::File(p.into())
    }
}
