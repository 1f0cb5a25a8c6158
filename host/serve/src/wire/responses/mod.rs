//! `POST /v1/responses`: the Responses API's request mapped onto the WIT's
//! `chat-request`, and the reply (whole, or as `response.*` events) in its shape.
//!
//! [`request`] reads the request, [`reply`] writes the answer.

mod reply;
mod request;
#[cfg(test)]
mod tests;

pub use reply::{EventWriter, whole};
pub use request::parse;
