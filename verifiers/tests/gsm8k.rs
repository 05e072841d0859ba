//! Real data: every GSM8K test solution scores correct against its own gold, and the same
//! solution with its final number changed scores incorrect.

use std::path::PathBuf;

use grpo_verifiers::arithmetic::{ArithmeticChecker, Verdict};

/// `shared/data`, beside the repository (or `$GRPO_DATA_DIR`).
fn data_dir() -> PathBuf {
    std::env::var_os("GRPO_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data")))
}

#[test]
fn gsm8k_test_solutions_score_their_own_gold() {
    let path = data_dir().join("gsm8k/test.jsonl");
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("skipped: {} is absent", path.display());
        return;
    };
    let checker = ArithmeticChecker::new(Default::default()).unwrap();
    let (mut rows, mut misses) = (0, Vec::new());
    for (index, line) in text.lines().enumerate() {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        let solution = row["answer"].as_str().unwrap();
        let (body, gold) = solution.rsplit_once("####").unwrap();
        let gold = gold.trim();
        // An independent reading of the gold: GSM8K writes integers, sometimes comma-grouped.
        let value: i128 = gold
            .replace(',', "")
            .parse()
            .unwrap_or_else(|_| panic!("line {}: gold {gold:?}", index + 1));

        let verdict = checker.judge(gold, solution).verdict;
        if verdict != Verdict::Correct {
            misses.push(format!(
                "line {}: own solution judged {verdict:?}",
                index + 1
            ));
        }
        for wrong in [value + 1, value - 1, value * 10 + 3] {
            let altered = format!("{body}#### {wrong}");
            let verdict = checker.judge(gold, &altered).verdict;
            if verdict != Verdict::Incorrect {
                misses.push(format!(
                    "line {}: final number {wrong} judged {verdict:?}",
                    index + 1
                ));
            }
        }
        rows += 1;
    }
    assert_eq!(rows, 1319, "GSM8K test has 1,319 rows");
    assert!(
        misses.is_empty(),
        "{} misses:\n{}",
        misses.len(),
        misses.join("\n")
    );
}
