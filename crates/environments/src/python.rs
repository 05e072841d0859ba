//! A Python interpreter as a tool, run in the unit-test runner's sandbox with its limits: the
//! model's program is untrusted code, contained exactly as the programs it is graded on are.

use grpo_verifiers::unit_test::{UnitTestConfig, UnitTestRunner};
use serde_json::{Map, Value};

use crate::{Tool, ToolError};

/// `{"code": "print(sum(range(10)))"}` → `45`: the program's stdout (and, when it fails, the
/// last lines of its stderr). No network, no files outside its own directory, the runner's
/// `timeout_s` and `memory_mb`.
pub struct PythonTool {
    runner: UnitTestRunner,
    timeout_s: f64,
}

impl PythonTool {
    /// A tool running programs under `config`'s limits (its `language` and `code` are not used).
    pub fn new(config: UnitTestConfig) -> Result<Self, grpo_verifiers::ConfigError> {
        Ok(PythonTool {
            timeout_s: config.timeout_s,
            runner: UnitTestRunner::new(config)?,
        })
    }
}

impl Tool for PythonTool {
    fn name(&self) -> &str {
        "python"
    }

    fn description(&self) -> &str {
        "runs the Python program `code` in a sandbox and returns what it prints"
    }

    fn parameters(&self) -> Value {
        serde_json::json!({
            "type": "object",
            "properties": {
                "code": {"type": "string", "description": "a Python program; print the result"}
            },
            "required": ["code"]
        })
    }

    fn call(&self, arguments: &Map<String, Value>) -> Result<String, ToolError> {
        let code = arguments
            .get("code")
            .and_then(Value::as_str)
            .ok_or_else(|| ToolError::InvalidArguments("`code` must be a string".into()))?;
        let script = self
            .runner
            .run_script(code)
            .map_err(|e| ToolError::Failed(e.to_string()))?;
        if script.timed_out {
            return Err(ToolError::Timeout(std::time::Duration::from_secs_f64(
                self.timeout_s,
            )));
        }
        if script.output_limited {
            return Err(ToolError::Failed("the program printed too much".into()));
        }
        if script.exit != 0 {
            let tail: Vec<&str> = script.stderr.lines().rev().take(3).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(ToolError::Failed(format!(
                "exit status {}: {}",
                script.exit,
                tail.join("\n")
            )));
        }
        Ok(script.stdout.trim_end().to_owned())
    }
}
