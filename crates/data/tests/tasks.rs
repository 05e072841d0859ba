//! The procedural tasks: deterministic, splits pairwise disjoint, every row checkable by the
//! verifier that will score it.

use std::collections::HashSet;

use grpo_data::Row;
use grpo_data::tasks::{ArithmeticTask, CountdownTask, Split, Task};
use grpo_verifiers::Verifier;
use grpo_verifiers::arithmetic::{ArithmeticChecker, ArithmeticConfig, Extract, Policy};

const N: usize = 1500;

fn all_splits(task: &dyn Task, seed: u64) -> Vec<(Split, Vec<Row>)> {
    Split::ALL
        .into_iter()
        .map(|split| (split, task.generate(split, N, seed).unwrap()))
        .collect()
}

fn text<'a>(row: &'a Row, field: &str) -> &'a str {
    row.get(field).and_then(|v| v.as_str()).unwrap()
}

/// The problem a row poses, whatever the wording.
fn problem(row: &Row) -> String {
    match row.get("task").and_then(|v| v.as_str()) {
        Some("arithmetic") => text(row, "expression").to_owned(),
        _ => {
            let mut numbers: Vec<u64> =
                serde_json::from_value(row.get("numbers").unwrap().clone()).unwrap();
            numbers.sort();
            format!("{numbers:?}={}", row.get("target").unwrap())
        }
    }
}

fn check_splits(task: &dyn Task, train_templates: &[String], held_out_templates: &[String]) {
    let splits = all_splits(task, 7);
    // Determinism: the same seed gives the same rows; another seed other rows.
    for (split, rows) in &splits {
        assert_eq!(rows.len(), N);
        assert_eq!(
            &task.generate(*split, N, 7).unwrap(),
            rows,
            "{split} not deterministic"
        );
        assert_ne!(
            &task.generate(*split, N, 8).unwrap(),
            rows,
            "{split} ignores the seed"
        );
        assert!(rows.iter().all(|r| text(r, "split") == split.name()));
        let prompts: HashSet<&str> = rows.iter().map(Row::prompt).collect();
        assert_eq!(prompts.len(), N, "{split} repeats a prompt");
    }
    // Pairwise disjoint as rows, and test-side problems never appear in training.
    for (i, (a, rows_a)) in splits.iter().enumerate() {
        let prompts: HashSet<&str> = rows_a.iter().map(Row::prompt).collect();
        for (b, rows_b) in &splits[i + 1..] {
            let shared = rows_b
                .iter()
                .filter(|r| prompts.contains(r.prompt()))
                .count();
            assert_eq!(shared, 0, "{a} and {b} share {shared} prompts");
        }
    }
    let rows = |split: Split| &splits.iter().find(|(s, _)| *s == split).unwrap().1;
    let train_problems: HashSet<String> = rows(Split::Train).iter().map(problem).collect();
    // Ten other seeds' training rows: the partition is by problem, not by seed.
    let mut all_train = train_problems.clone();
    for seed in 100..110 {
        all_train.extend(
            task.generate(Split::Train, N, seed)
                .unwrap()
                .iter()
                .map(problem),
        );
    }
    for split in [
        Split::Test,
        Split::OodTemplate,
        Split::OodLength,
        Split::OodComposition,
    ] {
        let leaked = rows(split)
            .iter()
            .filter(|r| all_train.contains(&problem(r)))
            .count();
        assert_eq!(
            leaked, 0,
            "{leaked} problems of {split} are training problems"
        );
    }
    // Each held-out split differs from training in its own way.
    for (split, rows) in &splits {
        for row in rows {
            let template = text(row, "template").to_owned();
            let templates = if *split == Split::OodTemplate {
                held_out_templates
            } else {
                train_templates
            };
            assert!(
                templates.contains(&template),
                "{split}: template {template:?}"
            );
        }
    }
}

#[test]
fn arithmetic_splits_are_deterministic_and_disjoint() {
    let task = ArithmeticTask::default();
    check_splits(&task, &task.templates, &task.held_out_templates);
    let train = task.generate(Split::Train, N, 1).unwrap();
    let digits = |row: &Row| {
        text(row, "expression")
            .split(['+', '-', '*'])
            .map(|n| n.len())
            .max()
            .unwrap()
    };
    assert!(train.iter().all(|r| digits(r) <= 2));
    let long = task.generate(Split::OodLength, N, 1).unwrap();
    assert!(long.iter().all(|r| digits(r) == 3));
    let together = |row: &Row| {
        let ops = text(row, "operators");
        ops.contains('+') && ops.contains('*')
    };
    assert!(!train.iter().any(together));
    assert!(
        task.generate(Split::OodComposition, N, 1)
            .unwrap()
            .iter()
            .all(together)
    );
    // Both symbol and word phrasings occur in training.
    assert!(train.iter().any(|r| r.prompt().contains(" plus ")));
    assert!(train.iter().any(|r| r.prompt().contains('+')));
}

#[test]
fn countdown_splits_are_deterministic_and_disjoint() {
    let task = CountdownTask::default();
    check_splits(&task, &task.templates, &task.held_out_templates);
    let count = |row: &Row| row.get("numbers").unwrap().as_array().unwrap().len();
    assert!(
        task.generate(Split::Train, N, 1)
            .unwrap()
            .iter()
            .all(|r| (3..=4).contains(&count(r)))
    );
    assert!(
        task.generate(Split::OodLength, N, 1)
            .unwrap()
            .iter()
            .all(|r| count(r) == 5)
    );
    let together = |row: &Row| {
        let ops = text(row, "operators");
        ops.contains('*') && ops.contains('/')
    };
    assert!(
        !task
            .generate(Split::Train, N, 1)
            .unwrap()
            .iter()
            .any(together)
    );
    assert!(
        task.generate(Split::OodComposition, N, 1)
            .unwrap()
            .iter()
            .all(together)
    );
}

/// The arithmetic verifier (our independent evaluator: exact rationals, its own parser) agrees
/// with every generated answer, given the expression or the answer itself, and with every
/// step of the worked solution.
#[test]
fn arithmetic_answers_are_what_the_verifier_computes() {
    let literal = ArithmeticChecker::new(ArithmeticConfig {
        extract: Extract::Whole,
        ..Default::default()
    })
    .unwrap();
    let expression = ArithmeticChecker::new(ArithmeticConfig {
        extract: Extract::Whole,
        policy: Policy::Expression,
        ..Default::default()
    })
    .unwrap();
    let last_number = ArithmeticChecker::new(ArithmeticConfig {
        extract: Extract::LastNumber,
        ..Default::default()
    })
    .unwrap();
    let task = ArithmeticTask::default();
    for split in Split::ALL {
        for row in task.generate(split, 500, 3).unwrap() {
            let score = literal.verify(&sample(&row, text(&row, "answer"))).unwrap();
            assert_eq!(score.correct, Some(true), "{row:?}");
            let score = expression
                .verify(&sample(&row, text(&row, "expression")))
                .unwrap();
            assert_eq!(score.correct, Some(true), "{row:?}: {}", score.details);
            // One step per operator, ending at the answer (which the lenient extraction the
            // math_rl example uses reads from the whole chain).
            let operators = text(&row, "expression")
                .chars()
                .filter(|c| "+-*".contains(*c))
                .count();
            check_steps(&expression, &row, operators, text(&row, "answer"));
            let score = last_number
                .verify(&sample(&row, text(&row, "steps")))
                .unwrap();
            assert_eq!(score.correct, Some(true), "{row:?}");
        }
    }
}

/// Every countdown instance is solvable: its kept solution is accepted by the expression
/// verifier that uses each number exactly once, as `examples/verifiers/countdown.toml` does,
/// and its worked steps are true and end at the target.
#[test]
fn every_countdown_instance_has_an_accepted_solution() {
    let checker = ArithmeticChecker::new(ArithmeticConfig {
        answer_field: "target".into(),
        extract: Extract::Whole,
        policy: Policy::Expression,
        numbers_field: Some("numbers".into()),
        ..Default::default()
    })
    .unwrap();
    let step_checker = ArithmeticChecker::new(ArithmeticConfig {
        extract: Extract::Whole,
        policy: Policy::Expression,
        ..Default::default()
    })
    .unwrap();
    let task = CountdownTask::default();
    let mut checked = 0;
    for split in Split::ALL {
        for row in task.generate(split, 1000, 5).unwrap() {
            let score = checker
                .verify(&sample(&row, text(&row, "solution")))
                .unwrap();
            assert_eq!(score.correct, Some(true), "{row:?}: {}", score.details);
            // One step per combination, ending at the target.
            let numbers = row.get("numbers").unwrap().as_array().unwrap().len();
            let target = row.get("target").unwrap().as_u64().unwrap();
            check_steps(&step_checker, &row, numbers - 1, &target.to_string());
            assert!((1..=100).contains(&target));
            checked += 1;
        }
    }
    assert_eq!(checked, 5000);
    // A wrong solution is rejected, so the check above can fail.
    let row = &task.generate(Split::Train, 1, 5).unwrap()[0];
    let numbers = row.get("numbers").unwrap().as_array().unwrap();
    let wrong = numbers
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join("+")
        + "+1";
    assert_eq!(
        checker.verify(&sample(row, &wrong)).unwrap().correct,
        Some(false)
    );
}

/// The row's worked `steps`: `count` of them, each `lhs=rhs` true by `expression` (an
/// expression-policy checker: our independent evaluator), the last one giving `result`.
fn check_steps(expression: &ArithmeticChecker, row: &Row, count: usize, result: &str) {
    let steps: Vec<&str> = text(row, "steps").split(',').collect();
    assert_eq!(steps.len(), count, "{row:?}");
    for step in &steps {
        let (lhs, rhs) = step.split_once('=').unwrap();
        let claimed = row.clone().with("answer", rhs);
        let score = expression.verify(&sample(&claimed, lhs)).unwrap();
        assert_eq!(score.correct, Some(true), "{step} in {row:?}");
    }
    assert!(
        steps.last().unwrap().ends_with(&format!("={result}")),
        "{row:?}"
    );
}

fn sample<'a>(row: &'a Row, completion: &'a str) -> grpo_verifiers::Sample<'a> {
    grpo_verifiers::Sample::new(row.prompt(), completion, row.fields())
}

#[test]
fn too_many_rows_for_a_split_is_an_error_not_a_hang() {
    let task = ArithmeticTask {
        min_digits: 1,
        max_digits: 1,
        ood_digits: 2,
        ..Default::default()
    };
    let error = task
        .generate(Split::Test, 20_000, 0)
        .unwrap_err()
        .to_string();
    assert!(error.contains("too small"), "{error}");
}
