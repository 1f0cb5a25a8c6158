//! What the plugin reads of one chat-completions object (a `chat.completion.chunk` event
//! of a stream, or a whole `chat.completion` reply), and of the Responses stream's token
//! events ([`DeltaEvent`]: 0.25 µs per event natively against 0.69 µs as a `Value`).
//!
//! Most events of a stream are one token of text, wrapped in an id, an object type, a
//! timestamp and a model name the assembler never reads. Building a `serde_json::Value`
//! for each (a map, and a string for every field) was a sixth of `serve`'s CPU per
//! streamed reply, and for a whole reply a third of the plugin's work on it; this view
//! keeps the text (borrowed when it has no escapes) and the rarer parts as `Value`s, and
//! skips the rest unbuilt.
//!
//! It reads as leniently as `Value` accessors do: a field of another type than expected
//! counts as absent, a field named twice keeps its last value. One visitor reads every
//! part through `deserialize_any` and takes every JSON type: derived readers would bring
//! serde's type-mismatch messages, and with them core's float formatting, into the
//! component (49 KB), and each type of its own another copy of serde_json's parser.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// One event.
#[derive(Debug, Default)]
pub(super) struct ChunkEvent<'a> {
    pub(super) error: Option<Value>,
    pub(super) model: Option<Cow<'a, str>>,
    /// The first of `choices` (the only one a request for one answer gets).
    pub(super) choice: Option<ChunkChoice<'a>>,
    pub(super) citations: Option<Value>,
    pub(super) usage: Option<Value>,
}

/// The first choice of an event.
#[derive(Debug, Default)]
pub(super) struct ChunkChoice<'a> {
    pub(super) delta: ChunkDelta<'a>,
    /// A whole reply's `message`, when it is an object.
    pub(super) message: Option<ChunkDelta<'a>>,
    pub(super) finish_reason: Option<Cow<'a, str>>,
}

/// A choice's `delta` (or a whole reply's `message`).
#[derive(Debug, Default)]
pub(super) struct ChunkDelta<'a> {
    pub(super) reasoning_content: Option<Cow<'a, str>>,
    pub(super) content: Option<Cow<'a, str>>,
    /// Whether `reasoning_content` held neither text nor `null` (a stream skips such a
    /// field; a whole reply is refused for it).
    pub(super) reasoning_not_text: bool,
    /// Whether `content` held neither text nor `null`.
    pub(super) content_not_text: bool,
    pub(super) tool_calls: Option<Value>,
    pub(super) annotations: Option<Value>,
}

impl<'a> ChunkEvent<'a> {
    /// `data` read; `None` when it is not JSON.
    pub(super) fn parse(data: &'a str) -> Option<Self> {
        Self::parse_bytes(data.as_bytes())
    }

    /// [`ChunkEvent::parse`] of bytes (a whole reply's body).
    pub(super) fn parse_bytes(data: &'a [u8]) -> Option<Self> {
        let mut event = ChunkEvent::default();
        // From bytes, as every JSON the plugin reads (one reader type in the component).
        let mut reader = serde_json::Deserializer::from_slice(data);
        Slot::Event(&mut event).deserialize(&mut reader).ok()?;
        reader.end().ok()?;
        Some(event)
    }
}

/// What the Responses assembler reads of its most frequent events, a token of text or of
/// reasoning (`response.output_text.delta`, `response.reasoning_*text.delta`); it reads any
/// other event as a `Value`.
#[derive(Debug, Default)]
pub(super) struct DeltaEvent<'a> {
    pub(super) kind: Option<Cow<'a, str>>,
    pub(super) item_id: Option<Cow<'a, str>>,
    pub(super) delta: Option<Cow<'a, str>>,
    pub(super) summary_index: Option<u64>,
}

impl<'a> DeltaEvent<'a> {
    /// `data` read; `None` when it is not JSON.
    pub(super) fn parse(data: &'a str) -> Option<Self> {
        let mut event = DeltaEvent::default();
        let mut reader = serde_json::Deserializer::from_slice(data.as_bytes());
        Slot::DeltaEvent(&mut event).deserialize(&mut reader).ok()?;
        reader.end().ok()?;
        Some(event)
    }
}

/// Where a JSON value goes; a value of a kind its slot does not take is skipped.
enum Slot<'t, 'a> {
    Event(&'t mut ChunkEvent<'a>),
    DeltaEvent(&'t mut DeltaEvent<'a>),
    /// A non-negative integer (as `Value::as_u64` reads it).
    Count(&'t mut Option<u64>),
    /// `choices`: its first element.
    Choices(&'t mut Option<ChunkChoice<'a>>),
    Choice(&'t mut ChunkChoice<'a>),
    Delta(&'t mut ChunkDelta<'a>),
    /// A whole reply's `message`: kept only when it is an object.
    Message(&'t mut Option<ChunkDelta<'a>>),
    Text(&'t mut Option<Cow<'a, str>>),
    /// Text whose other kinds (but `null`) are noted in the flag.
    StrictText(&'t mut Option<Cow<'a, str>>, &'t mut bool),
    Key(&'t mut Cow<'a, str>),
    Skip,
}

impl<'a> Slot<'_, 'a> {
    fn text(self, s: Cow<'a, str>) {
        match self {
            Slot::Text(t) | Slot::StrictText(t, _) => *t = Some(s),
            Slot::Key(k) => *k = s,
            _ => {}
        }
    }

    /// Empties the target before its value is read: a field named twice counts as its last
    /// occurrence, whatever the kind of either.
    fn clear(&mut self) {
        match self {
            Slot::Count(c) => **c = None,
            Slot::Choices(c) => **c = None,
            Slot::Delta(d) => **d = ChunkDelta::default(),
            Slot::Message(m) => **m = None,
            Slot::Text(t) => **t = None,
            Slot::StrictText(t, not_text) => (**t, **not_text) = (None, false),
            // Read fresh each time (the event, a choice) or overwritten (a key).
            Slot::Event(_) | Slot::DeltaEvent(_) | Slot::Choice(_) | Slot::Key(_) | Slot::Skip => {}
        }
    }

    /// A value of a kind other than text or `null`.
    fn other(self) {
        if let Slot::StrictText(_, not_text) = self {
            *not_text = true;
        }
    }
}

/// A field as a `Value`, JSON `null` as absent (as `Value::get` then `is_null` reads it).
fn value<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Option<Value>, A::Error> {
    Ok(Some(map.next_value::<Value>()?).filter(|v| !v.is_null()))
}

impl<'de: 'a, 'a> DeserializeSeed<'de> for Slot<'_, 'a> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(mut self, d: D) -> Result<(), D::Error> {
        self.clear();
        d.deserialize_any(self)
    }
}

impl<'de: 'a, 'a> Visitor<'de> for Slot<'_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        self.other();
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        self.other();
        Ok(())
    }
    fn visit_u64<E>(self, n: u64) -> Result<(), E> {
        match self {
            Slot::Count(c) => *c = Some(n),
            other => other.other(),
        }
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        self.other();
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<(), E> {
        self.text(Cow::Borrowed(s));
        Ok(())
    }
    fn visit_str<E>(self, s: &str) -> Result<(), E> {
        self.text(Cow::Owned(s.to_owned()));
        Ok(())
    }
    fn visit_string<E>(self, s: String) -> Result<(), E> {
        self.text(Cow::Owned(s));
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        match self {
            Slot::Choices(choice) => {
                let mut first = ChunkChoice::default();
                if seq.next_element_seed(Slot::Choice(&mut first))?.is_some() {
                    *choice = Some(first);
                }
            }
            other => other.other(),
        }
        while seq.next_element_seed(Slot::Skip)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        match self {
            Slot::Message(message) => {
                let mut read = ChunkDelta::default();
                Slot::Delta(&mut read).visit_map(map)?;
                *message = Some(read);
                return Ok(());
            }
            Slot::StrictText(_, ref mut not_text) => **not_text = true,
            _ => {}
        }
        let mut key = Cow::Borrowed("");
        while map.next_key_seed(Slot::Key(&mut key))?.is_some() {
            // A field named twice: the last one counts (each slot is emptied before it is
            // read, in `deserialize`).
            match (&mut self, &*key) {
                (Slot::Event(e), "error") => e.error = value(&mut map)?,
                (Slot::Event(e), "model") => map.next_value_seed(Slot::Text(&mut e.model))?,
                (Slot::Event(e), "choices") => map.next_value_seed(Slot::Choices(&mut e.choice))?,
                (Slot::Event(e), "citations") => e.citations = value(&mut map)?,
                (Slot::Event(e), "usage") => e.usage = value(&mut map)?,
                (Slot::DeltaEvent(e), "type") => map.next_value_seed(Slot::Text(&mut e.kind))?,
                (Slot::DeltaEvent(e), "item_id") => {
                    map.next_value_seed(Slot::Text(&mut e.item_id))?;
                }
                (Slot::DeltaEvent(e), "delta") => map.next_value_seed(Slot::Text(&mut e.delta))?,
                (Slot::DeltaEvent(e), "summary_index") => {
                    map.next_value_seed(Slot::Count(&mut e.summary_index))?;
                }
                (Slot::Choice(c), "delta") => map.next_value_seed(Slot::Delta(&mut c.delta))?,
                (Slot::Choice(c), "message") => {
                    map.next_value_seed(Slot::Message(&mut c.message))?;
                }
                (Slot::Choice(c), "finish_reason") => {
                    map.next_value_seed(Slot::Text(&mut c.finish_reason))?;
                }
                (Slot::Delta(d), "reasoning_content") => map.next_value_seed(Slot::StrictText(
                    &mut d.reasoning_content,
                    &mut d.reasoning_not_text,
                ))?,
                (Slot::Delta(d), "content") => {
                    map.next_value_seed(Slot::StrictText(&mut d.content, &mut d.content_not_text))?;
                }
                (Slot::Delta(d), "tool_calls") => d.tool_calls = value(&mut map)?,
                (Slot::Delta(d), "annotations") => d.annotations = value(&mut map)?,
                _ => map.next_value_seed(Slot::Skip)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use serde_json::{Value, json};

    use super::ChunkEvent;

    #[test]
    fn a_token_reads_its_text_borrowed_and_skips_the_rest() {
        let data = r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",
            "choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]}"#;
        let e = ChunkEvent::parse(data).unwrap();
        let choice = e.choice.unwrap();
        assert!(matches!(choice.delta.content, Some(Cow::Borrowed("Hel"))));
        assert_eq!(choice.finish_reason, None);
        assert!(e.error.is_none() && e.usage.is_none() && e.citations.is_none());
    }

    #[test]
    fn escaped_text_is_unescaped() {
        let e = ChunkEvent::parse(r#"{"choices":[{"delta":{"content":"a\"b\u00e9"}}]}"#).unwrap();
        assert_eq!(e.choice.unwrap().delta.content.as_deref(), Some("a\"bé"));
    }

    #[test]
    fn the_rare_parts_are_values() {
        let data = r#"{"error":{"message":"boom"},"citations":["https://a"],
            "choices":[{"delta":{"tool_calls":[{"id":"t"}],"annotations":[{"type":"url_citation"}]}}]}"#;
        let e = ChunkEvent::parse(data).unwrap();
        assert_eq!(e.error, Some(json!({"message": "boom"})));
        assert_eq!(e.citations, Some(json!(["https://a"])));
        let delta = e.choice.unwrap().delta;
        assert_eq!(delta.tool_calls, Some(json!([{"id": "t"}])));
        assert_eq!(delta.annotations, Some(json!([{"type": "url_citation"}])));
    }

    /// What the assembler read with `Value` accessors before this view existed.
    fn by_value(data: &str) -> Option<[Option<Value>; 8]> {
        let v: Value = serde_json::from_str(data).ok()?;
        let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(Value::from);
        let owned = |v: &Value, k: &str| v.get(k).filter(|x| !x.is_null()).cloned();
        let choice = v
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|c| c.first());
        let delta = choice.map(|c| c.get("delta").unwrap_or(&Value::Null));
        Some([
            owned(&v, "error"),
            owned(&v, "citations"),
            owned(&v, "usage"),
            delta.and_then(|d| text(d, "reasoning_content")),
            delta.and_then(|d| text(d, "content")),
            delta.and_then(|d| owned(d, "tool_calls")),
            delta.and_then(|d| owned(d, "annotations")),
            choice.and_then(|c| text(c, "finish_reason")),
        ])
    }

    fn by_view(data: &str) -> Option<[Option<Value>; 8]> {
        let e = ChunkEvent::parse(data)?;
        let text = |t: &Option<Cow<'_, str>>| t.as_deref().map(Value::from);
        let c = e.choice.as_ref();
        Some([
            e.error.clone(),
            e.citations.clone(),
            e.usage.clone(),
            c.and_then(|c| text(&c.delta.reasoning_content)),
            c.and_then(|c| text(&c.delta.content)),
            c.and_then(|c| c.delta.tool_calls.clone()),
            c.and_then(|c| c.delta.annotations.clone()),
            c.and_then(|c| text(&c.finish_reason)),
        ])
    }

    /// The Responses token view against the `Value` accessors the assembler used.
    #[test]
    fn the_responses_delta_view_reads_what_value_accessors_read() {
        use super::DeltaEvent;
        let cases = [
            r#"{"type":"response.output_text.delta","sequence_number":7,"item_id":"msg_1",
                "output_index":1,"content_index":0,"delta":"Hel","obfuscation":"x"}"#,
            r#"{"type":"response.reasoning_summary_text.delta","item_id":"rs_1","summary_index":2,"delta":"a\"bé"}"#,
            r#"{"type":7,"item_id":["x"],"delta":{"a":1},"summary_index":-1}"#,
            r#"{"summary_index":1.5,"delta":null,"item_id":null,"type":null}"#,
            r#"{"summary_index":"1","summary_index":3,"delta":"a","delta":5}"#,
            r#"{"type":"a","type":"b","item_id":"i","item_id":false}"#,
            r#"{"nested":{"type":"no","delta":"no"},"delta":"yes"}"#,
            r#"{"summary_index":18446744073709551615}"#,
            r#"[{"type":"x"}]"#,
            r#""text""#,
            "12",
            "null",
            r#"{"delta":"a"} trailing"#,
            r#"{"delta":"a""#,
            "",
        ];
        for data in cases {
            let by_value = serde_json::from_str::<Value>(data).ok().map(|v| {
                let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
                (
                    text("type"),
                    text("item_id"),
                    text("delta"),
                    v.get("summary_index").and_then(Value::as_u64),
                )
            });
            let by_view = DeltaEvent::parse(data).map(|e| {
                let owned = |t: Option<Cow<'_, str>>| t.map(Cow::into_owned);
                (
                    owned(e.kind),
                    owned(e.item_id),
                    owned(e.delta),
                    e.summary_index,
                )
            });
            assert_eq!(by_view, by_value, "{data}");
        }
    }

    /// Every kind in every place, fields named twice, escapes, not JSON: the view and the
    /// `Value` accessors agree.
    #[test]
    fn it_reads_what_value_accessors_read() {
        let cases = [
            r#"{"id":"c1","choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}]}"#,
            r#"{"choices":[{"delta":{"content":"a","content":7}}]}"#,
            r#"{"choices":[{"delta":{"content":7,"content":"a"}}]}"#,
            r#"{"choices":[{"delta":{"content":12.5,"reasoning_content":["x"]}}]}"#,
            r#"{"choices":[{"delta":null,"finish_reason":"stop"}]}"#,
            r#"{"choices":[{"delta":"text","finish_reason":{"a":1}}]}"#,
            r#"{"choices":[{"delta":{"content":"a"},"delta":{"reasoning_content":"r"}}]}"#,
            r#"{"choices":[],"usage":{"total_tokens":3}}"#,
            r#"{"choices":[7,{"delta":{"content":"b"}}]}"#,
            r#"{"choices":[{"delta":{"content":"a"}}],"choices":"none"}"#,
            r#"{"choices":{"0":{"delta":{"content":"a"}}}}"#,
            r#"{"choices":null,"citations":null,"usage":null,"error":null}"#,
            r#"{"error":"plain","error":{"message":"last"}}"#,
            r#"{"usage":{"x":1},"usage":[1,{"b":2}],"citations":["https://a"]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0}],"tool_calls":null}}]}"#,
            r#"{"choices":[{"delta":{"annotations":{"a":1},"content":"\ud83d\ude00\n\"\\"}}]}"#,
            r#"{"nested":{"choices":[{"delta":{"content":"no"}}]},"choices":[{"delta":{"content":"yes"}}]}"#,
            r#"[{"choices":[]}]"#,
            r#""text""#,
            "12.5",
            "null",
            r#"{"choices":[{"delta":{"content":"a"}}]} trailing"#,
            r#"{"choices":[{"delta":{"content":"a"}}]"#,
            "",
            "data",
        ];
        for data in cases {
            assert_eq!(by_view(data), by_value(data), "{data}");
        }
    }
}
