//! # grpo-environments
//!
//! Multi-turn episodes for GRPO: the model acts, the environment answers, and only the model's
//! tokens are trained. This crate does not depend on burn.
//!
//! - [`Environment`] / [`Episode`]: the one contract. An episode starts from a dataset row,
//!   answers each model turn with an observation or ends, and reports an [`Outcome`] (an
//!   optional reward, tool-call counts). The sampler appends each observation's tokens to the
//!   row's KV cache and decodes on; the trainer masks them out of the loss.
//! - [`ToolCalling`]: tool calls in the Hermes/Qwen2.5 syntax
//!   (`<tool_call>{"name": …, "arguments": {…}}</tool_call>` → `<tool_response>…</tool_response>`)
//!   over [`Tool`]s: the exact [`Calculator`], a sandboxed [`PythonTool`], an
//!   [`ExternalTool`] in any language (JSON lines over stdin/stdout), or your own type.
//!
//! ## Guarantees for untrusted completions
//! A tool call is model output. Parsing is one linear scan plus `serde_json`; a malformed call,
//! an unknown tool, a tool's error, timeout or panic becomes an `error: …` observation the
//! model reads and a counted failure, never a crash. The calculator shares the arithmetic
//! checker's bounds; the Python tool runs under the unit-test runner's sandbox and limits.
//!
//! ```
//! use std::sync::Arc;
//! use grpo_data::Row;
//! use grpo_environments::{Calculator, Environment, Response, ToolCalling, ToolCallingConfig};
//!
//! let env = ToolCalling::new(vec![Arc::new(Calculator)], ToolCallingConfig::default()).unwrap();
//! let mut episode = env.start(&Row::from_prompt("What is 123*456?")).unwrap();
//! let turn = r#"<tool_call>{"name": "calculator", "arguments": {"expression": "123*456"}}</tool_call>"#;
//! assert_eq!(episode.respond(turn), Response::Observe("<tool_response>56088</tool_response>".into()));
//! assert_eq!(episode.respond(" The answer is 56088."), Response::End);
//! ```

mod calculator;
mod config;
mod environment;
mod external;
mod python;
mod tool;
mod tool_calling;

pub use calculator::Calculator;
pub use config::{BUILT_IN_TOOLS, EnvironmentConfig, ToolCallingSettings};
pub use environment::{Ending, Environment, EnvironmentError, Episode, Outcome, Response};
pub use external::{ExternalTool, ExternalToolConfig};
pub use python::PythonTool;
pub use tool::{Tool, ToolError};
pub use tool_calling::{ToolCalling, ToolCallingConfig};
