//! A request as both lanes carry it once parsed and validated: the conversation, the
//! declared tools and the output format. Answering is then written once, for both.

use super::format::Format;
use super::reply::tokens;
use super::tools::Tools;

/// Who wrote a message; `developer` counts as system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    System,
    User,
    Assistant,
}

/// An image of a message, as the echo shows it.
pub(super) struct Image {
    /// The URL, or `data:<mime>` for inline bytes (never the bytes themselves).
    pub label: String,
    /// The `detail` hint, when given.
    pub detail: Option<String>,
}

/// One element of the conversation.
pub(super) enum Entry {
    /// A message: its text parts joined, and its images.
    Message {
        role: Role,
        text: String,
        images: Vec<Image>,
    },
    /// A tool call the assistant made earlier.
    Call { name: String, arguments: String },
    /// The result of such a call.
    Output(String),
    /// A reasoning item passed back (Responses); `encrypted` when it carries our
    /// `encrypted_content`.
    Reasoning { summary: String, encrypted: bool },
}

/// What a request asks of the model.
pub(super) struct Turn {
    pub entries: Vec<Entry>,
    pub tools: Tools,
    pub format: Format,
    /// The output token cap (`max_tokens`, `max_completion_tokens`, `max_output_tokens`).
    pub max_tokens: Option<u64>,
    /// Live search asked (chat `search_parameters`, Responses server tools): the answer
    /// cites a source.
    pub search: bool,
}

impl Turn {
    /// Prompt tokens: each entry's text plus 4 for its framing.
    pub fn input_tokens(&self) -> u64 {
        self.entries
            .iter()
            .map(|e| {
                4 + match e {
                    Entry::Message { text, .. } => tokens(text),
                    Entry::Call { name, arguments } => tokens(name) + tokens(arguments),
                    Entry::Output(text) => tokens(text),
                    Entry::Reasoning { summary, .. } => tokens(summary),
                }
            })
            .sum()
    }

    /// The last entry that is not a system message: who the model answers.
    pub fn last_turn(&self) -> Option<&Entry> {
        self.entries.iter().rev().find(|e| {
            !matches!(
                e,
                Entry::Message {
                    role: Role::System,
                    ..
                }
            )
        })
    }

    /// Text and images of the last user message.
    pub fn last_user(&self) -> Option<(&str, &[Image])> {
        self.entries.iter().rev().find_map(|e| match e {
            Entry::Message {
                role: Role::User,
                text,
                images,
            } => Some((text.as_str(), images.as_slice())),
            _ => None,
        })
    }

    /// Tool outputs after the last user message, in order.
    pub fn outputs_since_user(&self) -> Vec<&str> {
        let start = self
            .entries
            .iter()
            .rposition(|e| {
                matches!(
                    e,
                    Entry::Message {
                        role: Role::User,
                        ..
                    }
                )
            })
            .map_or(0, |i| i + 1);
        self.entries[start..]
            .iter()
            .filter_map(|e| match e {
                Entry::Output(text) => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The plain answer: `Echo: ` and the last user text, then what a test needs to see
    /// arrived: ` [image <url|data:mime>[ detail=<d>]]` per image of that message, and
    /// ` [reasoning returned]` when an encrypted reasoning item came back.
    pub fn echo(&self) -> String {
        let (text, images) = self.last_user().unwrap_or(("", &[]));
        let mut out = format!("Echo: {text}");
        for image in images {
            out.push_str(" [image ");
            out.push_str(&image.label);
            if let Some(detail) = &image.detail {
                out.push_str(" detail=");
                out.push_str(detail);
            }
            out.push(']');
        }
        let returned = self.entries.iter().any(|e| {
            matches!(
                e,
                Entry::Reasoning {
                    encrypted: true,
                    ..
                }
            )
        });
        if returned {
            out.push_str(" [reasoning returned]");
        }
        out
    }
}
