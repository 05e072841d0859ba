//! The Python tool runs the model's program in the unit-test runner's sandbox.

use grpo_environments::{PythonTool, Tool, ToolError};
use grpo_verifiers::unit_test::UnitTestConfig;
use serde_json::{Value, json};

fn call(tool: &PythonTool, args: Value) -> Result<String, ToolError> {
    tool.call(args.as_object().unwrap())
}

fn tool() -> PythonTool {
    PythonTool::new(UnitTestConfig {
        timeout_s: 2.0,
        ..UnitTestConfig::default()
    })
    .unwrap()
}

#[test]
fn prints_come_back() {
    let tool = tool();
    assert_eq!(
        call(
            &tool,
            json!({"code": "print(sum(range(10)))\nprint(2**100)"})
        )
        .unwrap(),
        "45\n1267650600228229401496703205376"
    );
}

#[test]
fn failures_are_errors_the_model_reads() {
    let tool = tool();
    let Err(ToolError::Failed(message)) = call(&tool, json!({"code": "1/0"})) else {
        panic!("a raising program is a failure");
    };
    assert!(message.contains("ZeroDivisionError"), "{message}");
    assert_eq!(
        call(&tool, json!({"code": "while True: pass"})),
        Err(ToolError::Timeout(std::time::Duration::from_secs(2)))
    );
    assert!(matches!(
        call(&tool, json!({"program": "print(1)"})),
        Err(ToolError::InvalidArguments(_))
    ));
}

#[test]
fn the_sandbox_holds() {
    let tool = tool();
    // No network: a socket is refused by seccomp (or finds no route in the network namespace).
    let network =
        "import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=1)\nprint('connected')";
    assert!(matches!(
        call(&tool, json!({"code": network})),
        Err(ToolError::Failed(_))
    ));
    // No writing outside its own directory.
    let write = "open('/tmp/grpo_python_tool_escape', 'w').write('x')\nprint('wrote')";
    assert!(matches!(
        call(&tool, json!({"code": write})),
        Err(ToolError::Failed(_))
    ));
    assert!(!std::path::Path::new("/tmp/grpo_python_tool_escape").exists());
}
