//! A tool in another language: answers, errors, and a tool that hangs, crashes or talks out
//! of turn are failures the model reads, never a crash or a hang.

use grpo_environments::{ExternalTool, ExternalToolConfig, Tool, ToolError};
use serde_json::{Value, json};

/// A Python tool: `shout` upper-cases `text`; `text = "hang"` sleeps, `"crash"` exits,
/// `"noise"` prints a line that is not a reply, `"refuse"` answers with an error.
const SCRIPT: &str = r#"
import json, sys, time
for line in sys.stdin:
    call = json.loads(line)
    text = call["arguments"].get("text", "")
    if text == "hang":
        time.sleep(60)
    if text == "crash":
        sys.exit(3)
    if text == "noise":
        print("hello", flush=True)
        continue
    if text == "refuse":
        print(json.dumps({"error": "no shouting on Sundays"}), flush=True)
        continue
    print(json.dumps({"content": call["name"] + ": " + text.upper()}), flush=True)
"#;

fn tool() -> ExternalTool {
    ExternalTool::new(ExternalToolConfig {
        name: "shout".into(),
        description: "upper-cases `text`".into(),
        command: vec!["python3".into(), "-c".into(), SCRIPT.into()],
        timeout_s: 1.0,
        processes: 1,
        parameters: json!({"type": "object", "properties": {"text": {"type": "string"}}}),
    })
    .unwrap()
}

fn call(tool: &ExternalTool, args: Value) -> Result<String, ToolError> {
    tool.call(args.as_object().unwrap())
}

#[test]
fn replies_and_failures() {
    let tool = tool();
    assert_eq!(tool.name(), "shout");
    assert_eq!(call(&tool, json!({"text": "hi"})).unwrap(), "shout: HI");
    assert_eq!(
        call(&tool, json!({"text": "refuse"})),
        Err(ToolError::Failed("no shouting on Sundays".into()))
    );
    assert_eq!(
        call(&tool, json!({"text": "hang"})),
        Err(ToolError::Timeout(std::time::Duration::from_secs(1)))
    );
    // The hung process was killed; the next call gets a fresh one.
    assert_eq!(
        call(&tool, json!({"text": "again"})).unwrap(),
        "shout: AGAIN"
    );
    let Err(ToolError::Failed(crash)) = call(&tool, json!({"text": "crash"})) else {
        panic!("a crash is a failure");
    };
    assert!(crash.contains("crashed"), "{crash}");
    let Err(ToolError::Failed(noise)) = call(&tool, json!({"text": "noise"})) else {
        panic!("a line that is not a reply is a failure");
    };
    assert!(noise.contains("malformed reply `hello`"), "{noise}");
    assert_eq!(
        call(&tool, json!({"text": "still"})).unwrap(),
        "shout: STILL"
    );
}

#[test]
fn bad_settings_name_the_field() {
    let config = ExternalToolConfig {
        name: "x".into(),
        description: String::new(),
        command: Vec::new(),
        timeout_s: 1.0,
        processes: 1,
        parameters: json!({"type": "object"}),
    };
    let error = ExternalTool::new(config.clone()).err().unwrap();
    assert!(error.to_string().contains("command"), "{error}");
    let error = ExternalTool::new(ExternalToolConfig {
        command: vec!["true".into()],
        timeout_s: 0.0,
        ..config.clone()
    })
    .err()
    .unwrap();
    assert!(error.to_string().contains("timeout_s"), "{error}");
    let error = ExternalTool::new(ExternalToolConfig {
        command: vec!["true".into()],
        parameters: json!("text"),
        ..config
    })
    .err()
    .unwrap();
    assert!(error.to_string().contains("parameters"), "{error}");
}
