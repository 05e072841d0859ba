//! Tool calling as an environment: the model writes
//! `<tool_call>{"name": "calculator", "arguments": {"expression": "12*7"}}</tool_call>` (the
//! Hermes/Qwen2.5 syntax), the environment runs the tool and answers
//! `<tool_response>84</tool_response>`, and a turn without a call is the model's answer.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use grpo_data::Row;
use serde_json::{Map, Value};

use crate::{Ending, Environment, EnvironmentError, Episode, Outcome, Response, Tool};

const OPEN: &str = "<tool_call>";
const CLOSE: &str = "</tool_call>";

/// How tool results are shown to the model.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ToolCallingConfig {
    /// Written before each result. For a chat model, close its turn and open the tool's here
    /// (Qwen2.5: `"<|im_end|>\n<|im_start|>user\n<tool_response>\n"`).
    pub response_prefix: String,
    /// Written after each result (Qwen2.5: `"\n</tool_response><|im_end|>\n<|im_start|>assistant\n"`).
    pub response_suffix: String,
    /// A longer result is cut to this many characters (a tool's output is untrusted too, and
    /// every character costs context).
    pub max_response_chars: usize,
}

impl Default for ToolCallingConfig {
    fn default() -> Self {
        ToolCallingConfig {
            response_prefix: "<tool_response>".into(),
            response_suffix: "</tool_response>".into(),
            max_response_chars: 1000,
        }
    }
}

/// The tool-calling environment over a set of [`Tool`]s. A turn ends at `</tool_call>` (so the
/// model reads the result before it goes on); every call in the turn is run in order and
/// answered. Malformed calls, unknown tools, tool errors, timeouts and panics become results the
/// model reads (`error: …`), counted as failures — never a crash. Rewards are left to the
/// verifiers, which score the whole transcript.
#[derive(Clone)]
pub struct ToolCalling {
    tools: Vec<Arc<dyn Tool>>,
    config: ToolCallingConfig,
}

impl ToolCalling {
    /// An environment offering `tools`; their names must be distinct.
    pub fn new(
        tools: Vec<Arc<dyn Tool>>,
        config: ToolCallingConfig,
    ) -> Result<Self, EnvironmentError> {
        for (i, tool) in tools.iter().enumerate() {
            if tools[..i].iter().any(|t| t.name() == tool.name()) {
                return Err(EnvironmentError::config(
                    "tools",
                    format!("names the tool `{}` twice", tool.name()),
                ));
            }
        }
        if config.max_response_chars == 0 {
            return Err(EnvironmentError::config(
                "max_response_chars",
                "must be at least 1",
            ));
        }
        Ok(ToolCalling { tools, config })
    }

    /// One line per tool, `name: description`, for a prompt that tells the model what it has.
    pub fn tool_list(&self) -> String {
        self.tools
            .iter()
            .map(|t| format!("{}: {}\n", t.name(), t.description()))
            .collect()
    }

    /// Runs one call's text (what stood between the tags); `Err` is the failure the model reads.
    fn run(&self, call: &str) -> Result<String, String> {
        let value: Value = serde_json::from_str(call.trim())
            .map_err(|e| format!("malformed tool call: not JSON ({e})"))?;
        let Value::Object(mut call) = value else {
            return Err("malformed tool call: expected a JSON object".into());
        };
        let Some(Value::String(name)) = call.remove("name") else {
            return Err("malformed tool call: `name` must be a string".into());
        };
        let arguments = match call.remove("arguments") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(arguments)) => arguments,
            // Some models write the arguments as a JSON string, as OpenAI's API carries them.
            Some(Value::String(text)) => match serde_json::from_str(&text) {
                Ok(Value::Object(arguments)) => arguments,
                _ => return Err("malformed tool call: `arguments` must be an object".into()),
            },
            Some(_) => return Err("malformed tool call: `arguments` must be an object".into()),
        };
        let Some(tool) = self.tools.iter().find(|t| t.name() == name) else {
            let known: Vec<&str> = self.tools.iter().map(|t| t.name()).collect();
            return Err(format!(
                "unknown tool `{}`; the tools are: {}",
                truncate(&name, 64),
                known.join(", ")
            ));
        };
        match catch_unwind(AssertUnwindSafe(|| tool.call(&arguments))) {
            Ok(Ok(result)) => Ok(result),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err(format!("the tool `{name}` crashed")),
        }
    }
}

impl Environment for ToolCalling {
    fn turn_stops(&self) -> Vec<String> {
        vec![CLOSE.into()]
    }

    fn tools(&self) -> Vec<Value> {
        self.tools
            .iter()
            .map(|t| {
                serde_json::json!({
                    "type": "function",
                    "function": {
                        "name": t.name(),
                        "description": t.description(),
                        "parameters": t.parameters(),
                    }
                })
            })
            .collect()
    }

    fn start(&self, _row: &Row) -> Result<Box<dyn Episode>, EnvironmentError> {
        Ok(Box::new(ToolEpisode {
            environment: self.clone(),
            outcome: Outcome::default(),
        }))
    }
}

struct ToolEpisode {
    environment: ToolCalling,
    outcome: Outcome,
}

impl Episode for ToolEpisode {
    fn respond(&mut self, turn: &str) -> Response {
        let calls = tool_calls(turn);
        if calls.is_empty() {
            return Response::End;
        }
        let config = &self.environment.config;
        let mut observation = String::new();
        for call in calls {
            self.outcome.tool_calls += 1;
            let result = match call {
                Some(text) => self.environment.run(text),
                None => Err(format!("malformed tool call: no closing {CLOSE}")),
            };
            let shown = match result {
                Ok(result) => result,
                Err(error) => {
                    self.outcome.tool_failures += 1;
                    format!("error: {error}")
                }
            };
            observation.push_str(&config.response_prefix);
            observation.push_str(&truncate(&shown, config.max_response_chars));
            observation.push_str(&config.response_suffix);
        }
        Response::Observe(observation)
    }

    fn finish(&mut self, _ending: Ending) -> Outcome {
        let o = &self.outcome;
        Outcome {
            details: format!("{} tool calls, {} failed", o.tool_calls, o.tool_failures),
            ..o.clone()
        }
    }
}

/// The calls in a turn, in order: the text between each `<tool_call>` and its `</tool_call>`,
/// or `None` for a call left open. One linear scan.
fn tool_calls(turn: &str) -> Vec<Option<&str>> {
    let mut calls = Vec::new();
    let mut rest = turn;
    while let Some(open) = rest.find(OPEN) {
        let body = &rest[open + OPEN.len()..];
        match body.find(CLOSE) {
            Some(close) => {
                calls.push(Some(&body[..close]));
                rest = &body[close + CLOSE.len()..];
            }
            None => {
                calls.push(None);
                break;
            }
        }
    }
    calls
}

/// At most `max` characters of `text`, marked when cut.
fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Calculator, ToolError};

    struct Panics;
    impl Tool for Panics {
        fn name(&self) -> &str {
            "panics"
        }
        fn description(&self) -> &str {
            "always panics"
        }
        fn call(&self, _: &Map<String, Value>) -> Result<String, ToolError> {
            panic!("a bug in a tool")
        }
    }

    fn episode() -> Box<dyn Episode> {
        let env = ToolCalling::new(
            vec![Arc::new(Calculator), Arc::new(Panics)],
            ToolCallingConfig::default(),
        )
        .unwrap();
        env.start(&Row::from_prompt("q")).unwrap()
    }

    fn observe(episode: &mut Box<dyn Episode>, turn: &str) -> String {
        match episode.respond(turn) {
            Response::Observe(text) => text,
            Response::End => panic!("expected an observation for {turn:?}"),
        }
    }

    #[test]
    fn a_call_is_run_and_answered() {
        let mut e = episode();
        let call = r#"Let me compute. <tool_call>{"name": "calculator", "arguments": {"expression": "12*7"}}</tool_call>"#;
        assert_eq!(observe(&mut e, call), "<tool_response>84</tool_response>");
        // Arguments as a JSON string, as OpenAI's API carries them.
        let call = r#"<tool_call>{"name": "calculator", "arguments": "{\"expression\": \"1/4+1/4\"}"}</tool_call>"#;
        assert_eq!(observe(&mut e, call), "<tool_response>1/2</tool_response>");
        assert_eq!(e.respond("So the answer is 84."), Response::End);
        let outcome = e.finish(Ending::Done);
        assert_eq!((outcome.tool_calls, outcome.tool_failures), (2, 0));
        assert_eq!(outcome.reward, None);
    }

    #[test]
    fn every_failure_is_an_observation() {
        let mut e = episode();
        let cases = [
            (
                "<tool_call>{not json</tool_call>",
                "error: malformed tool call: not JSON",
            ),
            (
                "<tool_call>[1, 2]</tool_call>",
                "error: malformed tool call: expected a JSON object",
            ),
            (
                r#"<tool_call>{"arguments": {}}</tool_call>"#,
                "error: malformed tool call: `name`",
            ),
            (
                r#"<tool_call>{"name": "calculator", "arguments": 3}</tool_call>"#,
                "error: malformed tool call: `arguments`",
            ),
            (
                r#"<tool_call>{"name": "shell"}</tool_call>"#,
                "error: unknown tool `shell`; the tools are: calculator, panics",
            ),
            (
                r#"<tool_call>{"name": "calculator", "arguments": {}}</tool_call>"#,
                "error: invalid arguments: `expression`",
            ),
            (
                r#"<tool_call>{"name": "calculator", "arguments": {"expression": "1/0"}}</tool_call>"#,
                "error: division by zero",
            ),
            (
                r#"<tool_call>{"name": "panics"}</tool_call>"#,
                "error: the tool `panics` crashed",
            ),
            (
                r#"<tool_call>{"name": "calculator""#,
                "error: malformed tool call: no closing </tool_call>",
            ),
        ];
        for (turn, expected) in cases {
            let shown = observe(&mut e, turn);
            let inner = shown
                .strip_prefix("<tool_response>")
                .and_then(|s| s.strip_suffix("</tool_response>"))
                .unwrap();
            assert!(inner.starts_with(expected), "{turn:?} → {shown:?}");
        }
        let outcome = e.finish(Ending::MaxTurns);
        assert_eq!((outcome.tool_calls, outcome.tool_failures), (9, 9));
    }

    #[test]
    fn several_calls_in_one_turn_are_answered_in_order() {
        let mut e = episode();
        let turn = r#"<tool_call>{"name": "calculator", "arguments": {"expression": "2+2"}}</tool_call> and <tool_call>{"name": "calculator", "arguments": {"expression": "3*3"}}</tool_call>"#;
        assert_eq!(
            observe(&mut e, turn),
            "<tool_response>4</tool_response><tool_response>9</tool_response>"
        );
    }

    #[test]
    fn long_results_are_cut_and_names_must_be_distinct() {
        let env = ToolCalling::new(
            vec![Arc::new(Calculator)],
            ToolCallingConfig {
                max_response_chars: 5,
                ..ToolCallingConfig::default()
            },
        )
        .unwrap();
        let mut e = env.start(&Row::from_prompt("q")).unwrap();
        let turn = r#"<tool_call>{"name": "calculator", "arguments": {"expression": "10^20"}}</tool_call>"#;
        assert_eq!(
            observe(&mut e, turn),
            "<tool_response>10000…</tool_response>"
        );
        assert_eq!(env.turn_stops(), vec!["</tool_call>".to_string()]);
        assert!(matches!(
            ToolCalling::new(
                vec![Arc::new(Calculator), Arc::new(Calculator)],
                ToolCallingConfig::default()
            ),
            Err(EnvironmentError::Config { .. })
        ));
    }
}
