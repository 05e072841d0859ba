//! Real data: every GSM8K test solution scores correct against its own gold, and the same
//! solution with its final number changed scores incorrect.

use grpo_verifiers::arithmetic::{ArithmeticChecker, Verdict};

#[path = "../../tests/support/real_data.rs"]
mod support;

#[test]
fn gsm8k_test_solutions_score_their_own_gold() {
    let Some(path) = support::real_data("gsm8k/test.jsonl") else {
        return;
    };
    let text = std::fs::read_to_string(&path).unwrap();
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
