//! A prompt row: a JSON object with a string `prompt`, and whatever other fields the verifiers
//! need (`answer`, `tests`, `numbers`, `target`, …), carried untouched.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One dataset row. The `prompt` field is guaranteed to be present and a string; the other
/// fields are free.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Map<String, Value>", into = "Map<String, Value>")]
pub struct Row(Map<String, Value>);

impl Row {
    /// A row from a JSON object; `Err` says why it is not one (no string `prompt`).
    pub fn new(fields: Map<String, Value>) -> Result<Row, String> {
        match fields.get("prompt") {
            Some(Value::String(_)) => Ok(Row(fields)),
            Some(other) => Err(format!(
                "field `prompt` must be a string, found {}",
                json_kind(other)
            )),
            None => Err("missing field `prompt`".into()),
        }
    }

    /// A row with only a prompt; add fields with [`Row::with`].
    pub fn from_prompt(prompt: impl Into<String>) -> Row {
        let mut fields = Map::new();
        fields.insert("prompt".into(), Value::String(prompt.into()));
        Row(fields)
    }

    /// This row with `name` set to `value` (`prompt` keeps its guarantee: setting it to a
    /// non-string is ignored).
    pub fn with(mut self, name: &str, value: impl Into<Value>) -> Row {
        let value = value.into();
        if name != "prompt" || value.is_string() {
            self.0.insert(name.to_owned(), value);
        }
        self
    }

    pub fn prompt(&self) -> &str {
        self.0["prompt"].as_str().unwrap_or_default()
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
