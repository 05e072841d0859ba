//! `V.toml`: what builds, and the errors for what does not, each naming where.

use grpo_verifiers::{ConfigError, Sample, VerifierSet};
use serde_json::json;

fn build(text: &str) -> Result<VerifierSet, ConfigError> {
    VerifierSet::from_toml_str(text, "V.toml")
}

fn error(text: &str) -> String {
    build(text).expect_err("refused").to_string()
}

#[test]
fn the_documented_example_builds_and_scores() {
    let set = build(
        r#"
        [[verifiers]]
        kind = "arithmetic"
        name = "accuracy"
        weight = 1.0
        answer_field = "answer"
        extract = "anchors"
        policy = "literal"
        rel_tol = 0.0
        percent = "strip"

        [[verifiers]]
        kind = "regex"
        name = "format"
        weight = 0.5
        preset = "r1_format"

        [[verifiers]]
        kind = "gate"
        name = "answer_if_formatted"
        weight = 2
        if = { kind = "regex", preset = "r1_format" }
        then = { kind = "arithmetic" }

        [[verifiers]]
        kind = "max"
        of = [{ kind = "arithmetic", name = "strict" }, { kind = "arithmetic", name = "lenient", extract = "last_number" }]
        "#,
    )
    .unwrap();
    let names: Vec<_> = set.members().collect();
    assert_eq!(
        names,
        [
            ("accuracy", 1.0),
            ("format", 0.5),
            ("answer_if_formatted", 2.0),
            ("max", 1.0)
        ]
    );
    let row = json!({"answer": "4"});
    let row = row.as_object().unwrap();
    let good = set.evaluate(&Sample::new(
        "",
        "<think>2+2</think><answer>4</answer>",
        row,
    ));
    assert_eq!(good.reward, Ok(1.0 + 0.5 + 2.0 + 1.0));
    assert_eq!(good.correct, Some(true));
    // Right number, wrong format: the gate stays closed; the lenient max still finds 4.
    let bare = set.evaluate(&Sample::new("", "it is 4", row));
    assert_eq!(bare.reward, Ok(0.0 + 0.0 + 0.0 + 1.0));
    assert_eq!(bare.correct, Some(false));
}

#[test]
fn countdown_configuration() {
    let set = build(
        r#"
        [[verifiers]]
        kind = "arithmetic"
        answer_field = "target"
        policy = "expression"
        numbers_field = "numbers"
        "#,
    )
    .unwrap();
    let row = json!({"target": 24, "numbers": [3, 8, 2, 1]});
    let row = row.as_object().unwrap();
    let score = |completion| set.evaluate(&Sample::new("", completion, row)).reward;
    assert_eq!(score("<answer>3 * 8 * (2 - 1)</answer>"), Ok(1.0));
    assert_eq!(
        score("<answer>3 * 8</answer>"),
        Ok(0.0),
        "every number must be used"
    );
    assert_eq!(
        score("<answer>3 * 8 * 1 * 1</answer>"),
        Ok(0.0),
        "each only once"
    );
    assert_eq!(score("<answer>24</answer>"), Ok(0.0));
}

#[test]
fn errors_name_the_line_the_entry_and_the_field() {
    let text =
        "[[verifiers]]\nkind = \"arithmetic\"\n\n[[verifiers]]\nkind = \"regex\"\npatern = 'x'\n";
    let message = error(text);
    assert!(
        message.starts_with("V.toml:4: verifiers[1] (kind = \"regex\""),
        "{message}"
    );
    assert!(message.contains("unknown field `patern`"), "{message}");
    assert!(
        message.contains("`pattern`"),
        "lists the valid keys: {message}"
    );

    let message = error("[[verifiers]]\nkind = \"unit_tests\"\n");
    assert!(message.contains("unknown kind `unit_tests`"), "{message}");
    for kind in [
        "arithmetic",
        "regex",
        "external",
        "unit_test",
        "sum",
        "max",
        "gate",
    ] {
        assert!(message.contains(kind), "lists the kinds: {message}");
    }

    let message = error("[[verifiers]]\nkind = \"arithmetic\"\npolicy = \"lenient\"\n");
    assert!(message.contains("unknown variant `lenient`"), "{message}");

    let message = error("[[verifiers]]\nkind = \"arithmetic\"\nrel_tol = -1.0\n");
    assert!(message.contains("`rel_tol`"), "{message}");

    let message =
        error("[[verifiers]]\nkind = \"arithmetic\"\n[[verifiers]]\nkind = \"arithmetic\"\n");
    assert!(
        message.contains("two verifiers are named `arithmetic`"),
        "{message}"
    );

    let message =
        error("[[verifiers]]\nkind = \"max\"\nof = [{ kind = \"regex\", pattern = \"(\" }]\n");
    assert!(message.contains("verifiers[0].of[0]"), "{message}");
    assert!(message.contains("regex parse error"), "{message}");

    let message = error(
        "[[verifiers]]\nkind = \"gate\"\nif = { kind = \"regex\", preset = \"r1_format\", weight = 2 }\nthen = { kind = \"arithmetic\" }\n",
    );
    assert!(message.contains("`weight` only applies"), "{message}");

    let message = error("[[verifiers]]\nkind = \"gate\"\nthen = { kind = \"arithmetic\" }\n");
    assert!(message.contains("missing `if`"), "{message}");

    let message = error("verifier = []\n");
    assert!(message.contains("unknown field `verifier`"), "{message}");

    let message = error("[[verifiers]]\nkind = \"arithmetic\"\nnumbers_field = \"numbers\"\n");
    assert!(
        message.contains("only applies with policy = \"expression\""),
        "{message}"
    );

    let message = error("[[verifiers]\n");
    assert!(
        message.contains("V.toml:1:"),
        "TOML syntax errors name the file and line: {message}"
    );

    let message = error("");
    assert!(message.contains("verifiers"), "{message}");
}

#[test]
fn a_missing_file_is_named() {
    let message = VerifierSet::from_toml_file("/nonexistent/V.toml")
        .err()
        .unwrap()
        .to_string();
    assert!(message.contains("/nonexistent/V.toml"), "{message}");
}
