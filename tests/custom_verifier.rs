//! The `custom_verifier` example, run: a user's kind registered once works in a `V.toml`, a
//! run file and inside the combinators, with errors as precise as a built-in's.

#[path = "../examples/custom_verifier.rs"]
mod custom_verifier;

use custom_verifier::{StepCount, VERIFIERS_TOML, registry};
use grpo::recipe::Run;
use grpo::verifiers::{Registry, Sample};

#[test]
fn the_example_runs() {
    custom_verifier::main().unwrap();
}

#[test]
fn a_registered_kind_works_wherever_a_built_in_does() {
    let row = serde_json::Map::new();
    let two_steps = Sample::new("", "a = 1\nb = 2", &row);
    // Inside `max` and behind a `gate`, like any kind.
    let nested = registry()
        .verifiers_from_str(
            r#"
[[verifiers]]
kind = "max"
of = [{ kind = "step_count", min_steps = 4 }, { kind = "regex", pattern = "^x" }]

[[verifiers]]
kind = "gate"
if = { kind = "regex", pattern = "=" }
then = { kind = "step_count", min_steps = 2 }
"#,
            "V.toml",
        )
        .unwrap();
    // max(2/4, 0) + gate(passes, 2/2) = 0.5 + 1.
    assert_eq!(nested.evaluate(&two_steps).reward.unwrap(), 1.5);

    // The kind is the registry's: without it a run file is refused, naming the kind and where.
    let run_file = format!("name = \"r\"\n[task]\nkind = \"arithmetic\"\n{VERIFIERS_TOML}");
    let error = Run::from_str(&run_file, "run.toml")
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.contains("run.toml:")
            && error.contains("unknown kind `step_count`")
            && error.contains("arithmetic"),
        "{error}"
    );
    let run = Run::from_str_with(&run_file, "run.toml", &registry()).unwrap();
    assert_eq!(run.verifiers.members().count(), 2);
}

#[test]
fn a_registered_kind_reports_bad_settings_like_a_built_in() {
    let error = |text: &str| {
        registry()
            .verifiers_from_str(text, "V.toml")
            .err()
            .unwrap()
            .to_string()
    };
    let typo = error("[[verifiers]]\nkind = \"step_count\"\nmin_step = 2\n");
    assert!(
        typo.starts_with("V.toml:1") && typo.contains("unknown field `min_step`"),
        "{typo}"
    );
    let zero = error("\n[[verifiers]]\nkind = \"step_count\"\nmin_steps = 0\n");
    assert!(
        zero.starts_with("V.toml:2") && zero.contains("min_steps") && zero.contains("at least 1"),
        "{zero}"
    );
    // A kind is registered once, and the combinators' names are taken.
    let mut again = registry();
    assert!(again.register("step_count", StepCount::new).is_err());
    assert!(Registry::default().register("sum", StepCount::new).is_err());
    assert!(again.kinds().any(|k| k == "step_count"));
}
