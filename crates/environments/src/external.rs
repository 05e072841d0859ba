//! A tool in any language: a long-lived child process speaking JSON lines, on the verifier
//! plugins' engine ([`PluginPool`]: timeouts kill the process group, a crashed or out-of-step
//! process is restarted for the next call).
//!
//! ## Protocol
//! For each call the tool reads one line on stdin, `{"name": "search", "arguments": {...}}`,
//! and writes one line on stdout: `{"content": "the result"}`, or `{"error": "why not"}` (which
//! the model sees as the call's failure). It should exit when stdin closes.

use grpo_verifiers::ConfigError;
use grpo_verifiers::external::{PluginError, PluginPool};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::{Tool, ToolError};

/// Settings of an external tool.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalToolConfig {
    /// The name the model calls it by.
    pub name: String,
    /// What it does and takes, for the tool list.
    pub description: String,
    /// The JSON Schema of its `arguments`, listed to a chat template (a TOML table:
    /// `parameters = { type = "object", properties = { query = { type = "string" } } }`);
    /// by default an object that declares no properties.
    #[serde(default = "default_parameters")]
    pub parameters: Value,
    /// The program and its arguments, e.g. `["python3", "search_tool.py"]`.
    pub command: Vec<String>,
    /// Seconds a reply may take.
    #[serde(default = "default_timeout_s")]
    pub timeout_s: f64,
    /// Copies running side by side (calls are spread over them).
    #[serde(default = "default_processes")]
    pub processes: usize,
}

fn default_timeout_s() -> f64 {
    10.0
}

fn default_processes() -> usize {
    2
}

fn default_parameters() -> Value {
    json!({"type": "object", "properties": {}})
}

/// A [`Tool`] served by a child process (see the [module docs](self)).
pub struct ExternalTool {
    name: String,
    description: String,
    parameters: Value,
    pool: PluginPool,
}

impl ExternalTool {
    /// Starts the tool's processes; an error names the setting.
    pub fn new(config: ExternalToolConfig) -> Result<Self, ConfigError> {
        if config.name.trim().is_empty() {
            return Err(ConfigError::invalid("name", "must not be empty"));
        }
        if !config.parameters.is_object() {
            return Err(ConfigError::invalid(
                "parameters",
                "must be a table (a JSON Schema object)",
            ));
        }
        Ok(ExternalTool {
            pool: PluginPool::new(config.command, config.timeout_s, config.processes)?,
            name: config.name,
            description: config.description,
            parameters: config.parameters,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Reply {
    content: Option<String>,
    error: Option<String>,
}

impl Tool for ExternalTool {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        &self.description
    }

    fn parameters(&self) -> Value {
        self.parameters.clone()
    }

    fn call(&self, arguments: &Map<String, Value>) -> Result<String, ToolError> {
        let request = json!({"name": self.name, "arguments": arguments});
        let reply = self.pool.call(&request, |line| {
            let shown: String = line.chars().take(200).collect();
            match serde_json::from_str::<Reply>(line) {
                Ok(Reply {
                    content: Some(content),
                    error: None,
                }) => Ok(Ok(content)),
                Ok(Reply {
                    content: None,
                    error: Some(error),
                }) => Ok(Err(error)),
                _ => Err((
                    format!(
                        "malformed reply `{shown}`: expected {{\"content\": …}} or {{\"error\": …}}"
                    ),
                    true,
                )),
            }
        });
        match reply {
            Ok(Ok(content)) => Ok(content),
            Ok(Err(error)) => Err(ToolError::Failed(error)),
            Err(PluginError::Timeout(after)) => Err(ToolError::Timeout(after)),
            Err(error @ PluginError::Failed { .. }) => Err(ToolError::Failed(error.to_string())),
        }
    }
}
