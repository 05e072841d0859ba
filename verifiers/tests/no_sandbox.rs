//! A build without the sandbox (not Linux, or `--cfg grpo_no_sandbox`): the runner builds from
//! its config and refuses every sample with the reason, never running code unconfined. CI runs
//! this with `RUSTFLAGS="--cfg grpo_no_sandbox"`; on a sandboxed build there is nothing to test.
#![cfg(not(all(target_os = "linux", not(grpo_no_sandbox))))]

use grpo_verifiers::unit_test::{Language, UnitTestConfig, UnitTestRunner};
use grpo_verifiers::{Sample, VerifierSet};

#[test]
fn every_sample_is_unscorable_with_the_reason() {
    let runner = UnitTestRunner::new(UnitTestConfig::default()).unwrap();
    assert!(runner.layers().is_empty());
    let fields = serde_json::json!({"tests": ["assert f() == 1"]});
    let error = runner
        .run(
            "def f(): return 1",
            Language::Python,
            fields.as_object().unwrap(),
        )
        .unwrap_err();
    assert!(
        error.to_string().contains("needs Linux's sandbox"),
        "{error}"
    );

    // Through a verifier set, as the trainer scores: unscorable, with the message.
    let set =
        VerifierSet::from_toml_str("[[verifiers]]\nkind = \"unit_test\"\n", "V.toml").unwrap();
    let completion = "```python\ndef f(): return 1\n```";
    let evaluation = set.evaluate(&Sample::new("", completion, fields.as_object().unwrap()));
    let message = evaluation.reward.unwrap_err().to_string();
    assert!(message.contains("needs Linux's sandbox"), "{message}");
}
