//! The Responses lane (`/responses`): request body, complete reply and stream events.
//!
//! Conversations are resent whole each turn with `store: false`, so reasoning is asked
//! back encrypted (`include: ["reasoning.encrypted_content"]`) and returned to the caller
//! as opaque [`ReasoningItem`](crate::types::ReasoningItem)s to pass back. Tool-call arguments stream as
//! `response.function_call_arguments.delta`; servers that send an empty delta or the
//! arguments only in `.done` / `response.output_item.done` assemble the same.
//!
//! `request.rs` writes the body, `reply.rs` reads a complete reply, `stream.rs` assembles
//! the stream's events.

mod reply;
mod request;
mod stream;

pub use reply::finish_reason;
pub(crate) use reply::{citation, parse_reply};
pub(crate) use request::body;
pub use stream::ResponsesAssembler;
