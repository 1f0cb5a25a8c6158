//! Live search: the one source every searched answer cites.

use serde_json::{Value, json};

/// The cited source's URL.
pub(super) const SOURCE_URL: &str = "https://example.com/source";
/// Its title.
pub(super) const SOURCE_TITLE: &str = "Reference source";

/// A Responses `url_citation` spanning all of `text` (indices in characters).
pub(super) fn url_citation(text: &str) -> Value {
    json!({
        "type": "url_citation", "url": SOURCE_URL, "title": SOURCE_TITLE,
        "start_index": 0, "end_index": text.chars().count(),
    })
}
