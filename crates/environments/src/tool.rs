//! A tool the model may call: a name, a one-line description, and a function of JSON
//! arguments to text.

use std::time::Duration;

use serde_json::{Map, Value};

/// A tool for [`ToolCalling`](crate::ToolCalling). Its arguments come from model output:
/// check them, and bound the work they can ask for — a tool must return (`Err` included) in
/// bounded time and must not panic (a panic is caught and shown to the model as a failure,
/// but it is a bug).
///
/// ```
/// use grpo_environments::{Tool, ToolError};
/// use serde_json::{Map, Value};
///
/// struct Reverse;
/// impl Tool for Reverse {
///     fn name(&self) -> &str { "reverse" }
///     fn description(&self) -> &str { "reverses `text`" }
///     fn call(&self, arguments: &Map<String, Value>) -> Result<String, ToolError> {
///         let text = arguments.get("text").and_then(Value::as_str)
///             .ok_or_else(|| ToolError::InvalidArguments("`text` must be a string".into()))?;
///         Ok(text.chars().rev().collect())
///     }
/// }
/// let args = serde_json::json!({"text": "abc"});
/// assert_eq!(Reverse.call(args.as_object().unwrap()).unwrap(), "cba");
/// ```
pub trait Tool: Send + Sync {
    /// The name the model calls it by.
    fn name(&self) -> &str;
    /// What it does and what arguments it takes, for the tool list the model is shown.
    fn description(&self) -> &str;
    /// The JSON Schema of its `arguments` object, as a chat template lists it to the model
    /// (the `parameters` of an OpenAI-style function). The default declares none.
    fn parameters(&self) -> Value {
        serde_json::json!({"type": "object", "properties": {}})
    }
    /// Runs the tool. `Err` is shown to the model as the call's failure.
    fn call(&self, arguments: &Map<String, Value>) -> Result<String, ToolError>;
}

/// Why a tool call failed; the model sees the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ToolError {
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    #[error("{0}")]
    Failed(String),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
}
