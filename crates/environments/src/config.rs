//! An environment from settings (a run file's `[environment]` section): the one place that
//! knows the environment kinds and the built-in tools by name.

use std::sync::Arc;

use grpo_verifiers::unit_test::UnitTestConfig;
use serde::Deserialize;

use crate::{
    Calculator, Environment, EnvironmentError, ExternalTool, ExternalToolConfig, PythonTool, Tool,
    ToolCalling, ToolCallingConfig,
};

/// The environment kinds a run file may name (`kind = "…"`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum EnvironmentConfig {
    /// [`ToolCalling`] over built-in tools by name and external ones.
    ToolCalling(ToolCallingSettings),
}

/// The keys of `kind = "tool_calling"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolCallingSettings {
    /// Built-in tools: `"calculator"`, `"python"`.
    #[serde(default)]
    pub tools: Vec<String>,
    /// The Python tool's sandbox limits (the unit-test runner's keys: `timeout_s`,
    /// `memory_mb`, …).
    #[serde(default)]
    pub python: Option<UnitTestConfig>,
    /// Tools in any language ([`ExternalTool`]).
    #[serde(default)]
    pub external_tools: Vec<ExternalToolConfig>,
    /// How results are shown ([`ToolCallingConfig`]'s keys).
    #[serde(default)]
    pub response_prefix: Option<String>,
    #[serde(default)]
    pub response_suffix: Option<String>,
    #[serde(default)]
    pub max_response_chars: Option<usize>,
}

/// The built-in tools' names.
pub const BUILT_IN_TOOLS: &[&str] = &["calculator", "python"];

impl EnvironmentConfig {
    /// Builds the environment (starting any external tool's processes); errors name the key.
    pub fn build(&self) -> Result<Arc<dyn Environment>, EnvironmentError> {
        match self {
            EnvironmentConfig::ToolCalling(settings) => Ok(Arc::new(settings.build()?)),
        }
    }
}

impl ToolCallingSettings {
    fn build(&self) -> Result<ToolCalling, EnvironmentError> {
        let mut tools: Vec<Arc<dyn Tool>> = Vec::new();
        for name in &self.tools {
            tools.push(match name.as_str() {
                "calculator" => Arc::new(Calculator),
                "python" => Arc::new(
                    PythonTool::new(self.python.clone().unwrap_or_default())
                        .map_err(|e| EnvironmentError::config("python", e.to_string()))?,
                ),
                other => {
                    return Err(EnvironmentError::config(
                        "tools",
                        format!(
                            "names `{other}`, which is not a built-in tool ({}); add a program as [[environment.external_tools]]",
                            BUILT_IN_TOOLS.join(", ")
                        ),
                    ));
                }
            });
        }
        if self.python.is_some() && !self.tools.iter().any(|t| t == "python") {
            return Err(EnvironmentError::config(
                "python",
                "is set but `tools` has no \"python\"",
            ));
        }
        for (i, external) in self.external_tools.iter().enumerate() {
            let tool = ExternalTool::new(external.clone()).map_err(|e| {
                EnvironmentError::config(format!("external_tools[{i}]"), e.to_string())
            })?;
            tools.push(Arc::new(tool));
        }
        if tools.is_empty() {
            return Err(EnvironmentError::config(
                "tools",
                "must name at least one tool (or give external_tools)",
            ));
        }
        let defaults = ToolCallingConfig::default();
        ToolCalling::new(
            tools,
            ToolCallingConfig {
                response_prefix: self
                    .response_prefix
                    .clone()
                    .unwrap_or(defaults.response_prefix),
                response_suffix: self
                    .response_suffix
                    .clone()
                    .unwrap_or(defaults.response_suffix),
                max_response_chars: self
                    .max_response_chars
                    .unwrap_or(defaults.max_response_chars),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(text: &str) -> Result<Arc<dyn Environment>, String> {
        let config: EnvironmentConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        config.build().map_err(|e| e.to_string())
    }

    #[test]
    fn settings_are_checked_by_field() {
        let env = build("kind = \"tool_calling\"\ntools = [\"calculator\"]").unwrap();
        assert_eq!(env.turn_stops(), vec!["</tool_call>".to_string()]);
        // The tools as a chat template lists them: an external tool's `parameters` table
        // as given, or an object declaring none.
        let env = build(
            "kind = \"tool_calling\"\ntools = [\"calculator\"]\n\
             [[external_tools]]\nname = \"search\"\ndescription = \"finds `query`\"\n\
             command = [\"true\"]\nparameters = { type = \"object\", properties = \
             { query = { type = \"string\" } }, required = [\"query\"] }\n\
             [[external_tools]]\nname = \"now\"\ndescription = \"the time\"\ncommand = [\"true\"]",
        )
        .unwrap();
        let tools = env.tools();
        let function = |i: usize| &tools[i]["function"];
        assert_eq!(tools.len(), 3);
        assert!(tools.iter().all(|t| t["type"] == "function"));
        assert_eq!(function(0)["name"], "calculator");
        assert_eq!(function(0)["parameters"]["required"][0], "expression");
        assert_eq!(
            function(1)["parameters"],
            serde_json::json!({"type": "object", "properties": {"query": {"type": "string"}},
                               "required": ["query"]})
        );
        assert_eq!(function(1)["description"], "finds `query`");
        assert_eq!(
            function(2)["parameters"],
            serde_json::json!({"type": "object", "properties": {}})
        );
        for (text, expected) in [
            (
                "kind = \"tool_calling\"",
                "environment config: `tools` must name at least one tool",
            ),
            (
                "kind = \"tool_calling\"\ntools = [\"calculator\"]\npython = { timeout_s = 1.0 }",
                "environment config: `python` is set but `tools` has no \"python\"",
            ),
            (
                "kind = \"tool_calling\"\n[[external_tools]]\nname = \"x\"\ndescription = \"\"\ncommand = []",
                "environment config: `external_tools[0]`",
            ),
            (
                "kind = \"tool_calling\"\ntools = [\"calculator\", \"calculator\"]",
                "names the tool `calculator` twice",
            ),
        ] {
            let error = build(text).err().unwrap();
            assert!(error.contains(expected), "{text:?} → {error}");
        }
        assert!(
            build("kind = \"chess\"")
                .err()
                .unwrap()
                .contains("unknown variant `chess`")
        );
        assert!(
            build("kind = \"tool_calling\"\ntool = [\"calculator\"]")
                .err()
                .unwrap()
                .contains("unknown field `tool`")
        );
    }
}
