//! A prompt row: a JSON object with a `prompt` — a string, or a conversation in TRL's
//! conversational format (`[{"role": "user", "content": "…"}, …]`) — and whatever other fields
//! the verifiers need (`answer`, `tests`, `numbers`, `target`, …), carried untouched.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One dataset row. The `prompt` field is guaranteed to be present, and to be a string or a
/// conversation: a non-empty list of message objects, each with a string `role` (its other
/// keys — `content`, `tool_calls`, … — are the chat template's to read). The other fields are
/// free.
///
/// A conversation becomes a text prompt when a chat template renders it; the trainers take
/// text prompts only, and refuse a conversation that reached them unrendered:
///
/// ```
/// use grpo_data::Row;
///
/// let row = Row::parse(r#"{"prompt": [{"role": "user", "content": "2+2?"}], "answer": "4"}"#)
///     .unwrap();
/// let messages = row.conversation().expect("a conversation");
/// // With a model's template: `template.render(messages, true)?` (grpo_policy::ChatTemplate).
/// let text = format!("<|user|>{}\n<|assistant|>", messages[0]["content"].as_str().unwrap());
/// let row = row.with("prompt", text);
/// assert_eq!(row.prompt(), "<|user|>2+2?\n<|assistant|>");
/// assert_eq!(row.get("answer").unwrap(), "4");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Map<String, Value>", into = "Map<String, Value>")]
pub struct Row(Map<String, Value>);

impl Row {
    /// A row from a JSON object; `Err` says why it is not one (no `prompt`, or one that is
    /// neither a string nor a conversation — naming the message at fault).
    pub fn new(fields: Map<String, Value>) -> Result<Row, String> {
        match fields.get("prompt") {
            Some(prompt) => check_prompt(prompt).map(|()| Row(fields)),
            None => Err("missing field `prompt`".into()),
        }
    }

    /// A row with only a prompt; add fields with [`Row::with`].
    pub fn from_prompt(prompt: impl Into<String>) -> Row {
        let mut fields = Map::new();
        fields.insert("prompt".into(), Value::String(prompt.into()));
        Row(fields)
    }

    /// This row with `name` set to `value` (`prompt` keeps its guarantee: setting it to
    /// neither a string nor a conversation is ignored).
    pub fn with(mut self, name: &str, value: impl Into<Value>) -> Row {
        let value = value.into();
        if name != "prompt" || check_prompt(&value).is_ok() {
            self.0.insert(name.to_owned(), value);
        }
        self
    }

    /// The prompt's text; `""` when the prompt is a conversation (see [`Row::conversation`]).
    pub fn prompt(&self) -> &str {
        self.0["prompt"].as_str().unwrap_or_default()
    }

    /// The prompt's messages, when it is a conversation not yet rendered to text.
    pub fn conversation(&self) -> Option<&[Value]> {
        self.0["prompt"].as_array().map(Vec::as_slice)
    }

    /// Every field, `prompt` included: what a verifier sees as the sample's fields.
    pub fn fields(&self) -> &Map<String, Value> {
        &self.0
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }

    pub fn into_fields(self) -> Map<String, Value> {
        self.0
    }

    /// Parses one JSONL line into a row; `Err` is the message (the caller adds file and line).
    pub fn parse(line: &str) -> Result<Row, String> {
        parse_object(line).and_then(Row::new)
    }
}

impl TryFrom<Map<String, Value>> for Row {
    type Error = String;
    fn try_from(fields: Map<String, Value>) -> Result<Row, String> {
        Row::new(fields)
    }
}

impl From<Row> for Map<String, Value> {
    fn from(row: Row) -> Self {
        row.0
    }
}

/// `Ok` when `prompt` is a string or a conversation (the row's guarantee).
fn check_prompt(prompt: &Value) -> Result<(), String> {
    let messages = match prompt {
        Value::String(_) => return Ok(()),
        Value::Array(messages) if !messages.is_empty() => messages,
        Value::Array(_) => return Err("field `prompt` is an empty conversation".into()),
        other => {
            return Err(format!(
                "field `prompt` must be a string or a list of messages, found {}",
                json_kind(other)
            ));
        }
    };
    for (index, message) in messages.iter().enumerate() {
        match message.get("role") {
            Some(Value::String(_)) => {}
            _ if !message.is_object() => {
                return Err(format!(
                    "field `prompt`: message {index} must be an object with a `role`, found {}",
                    json_kind(message)
                ));
            }
            _ => {
                return Err(format!(
                    "field `prompt`: message {index} has no string `role`"
                ));
            }
        }
    }
    Ok(())
}

/// One line as a JSON object.
pub(crate) fn parse_object(line: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(other) => Err(format!(
            "expected a JSON object, found {}",
            json_kind(&other)
        )),
        Err(error) => Err(format!("not valid JSON: {error}")),
    }
}

pub(crate) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prompt_is_a_string_or_a_conversation_of_messages_with_roles() {
        let row = Row::parse(r#"{"prompt": "2+2?"}"#).unwrap();
        assert_eq!((row.prompt(), row.conversation()), ("2+2?", None));

        let line = r#"{"prompt": [{"role": "system", "content": "Be brief."},
                                  {"role": "user", "content": "2+2?"}]}"#;
        let row = Row::parse(line).unwrap();
        let messages = row.conversation().unwrap();
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[1]["content"], "2+2?");
        assert_eq!(
            row.prompt(),
            "",
            "a conversation has no text until rendered"
        );
        // Rendered, it is a text prompt like any other.
        let row = row.with("prompt", "<|user|>2+2?");
        assert_eq!((row.prompt(), row.conversation()), ("<|user|>2+2?", None));

        for (line, error) in [
            (
                r#"{"prompt": 7}"#,
                "must be a string or a list of messages, found a number",
            ),
            (r#"{"prompt": []}"#, "empty conversation"),
            (
                r#"{"prompt": [{"role": "user", "content": "a"}, "b"]}"#,
                "message 1 must be an object with a `role`, found a string",
            ),
            (
                r#"{"prompt": [{"role": "user"}, {"content": "b"}]}"#,
                "message 1 has no string `role`",
            ),
            (
                r#"{"prompt": [{"role": 1}]}"#,
                "message 0 has no string `role`",
            ),
        ] {
            let message = Row::parse(line).unwrap_err();
            assert!(message.contains(error), "{line}: {message}");
        }
        // `with` keeps the guarantee.
        let row = Row::from_prompt("a").with("prompt", serde_json::json!([{"content": "x"}]));
        assert_eq!(row.prompt(), "a");
    }
}
