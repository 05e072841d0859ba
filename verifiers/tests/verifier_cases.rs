//! The golden cases of `shared/VERIFIER-CASES.md`: verdicts the arithmetic checker must give.
//!
//! The "math-verify 0.9.0" column there is what Hugging Face math-verify returns for the same
//! pair; where a row below says DELIBERATE, we differ from it on purpose, for the reason given.

use grpo_verifiers::arithmetic::{
    ArithmeticChecker, ArithmeticConfig, Extract, Percent, Policy, Verdict,
};

use Verdict::*;

/// (case #, gold, completion, expected verdict, settings changed from the defaults)
type Case = (
    u32,
    &'static str,
    &'static str,
    Verdict,
    fn(&mut ArithmeticConfig),
);

fn defaults(_: &mut ArithmeticConfig) {}

const CASES: &[Case] = &[
    (1, "1000", r"\boxed{1,000}", Correct, defaults),
    (2, "1000", r"\boxed{1{,}000}", Correct, defaults),
    // DELIBERATE (math-verify: False): thin-space grouping is common in LaTeX.
    (3, "1000", r"\boxed{1\,000}", Correct, defaults),
    // DELIBERATE (math-verify: False): space grouping in strict 3-digit groups.
    (4, "1000", r"\boxed{1 000}", Correct, defaults),
    (5, "1000000", r"\boxed{1,000,000}", Correct, defaults),
    (6, "10000", r"\boxed{1,0000}", Unparseable, defaults),
    // DELIBERATE (math-verify: True): no decimal comma, it is ambiguous with grouping.
    (7, "1.5", r"\boxed{1,5}", Unparseable, defaults),
    (8, r"\frac{1}{2}", r"\boxed{0.5}", Correct, defaults),
    (9, "0.5", r"\boxed{1/2}", Correct, defaults),
    (10, "0.1", r"\boxed{.1}", Correct, defaults),
    (11, "2", r"\boxed{02}", Correct, defaults),
    (12, r"50\%", r"\boxed{50}", Correct, defaults),
    (13, r"50\%", r"\boxed{50\%}", Correct, defaults),
    // DELIBERATE (math-verify: True): by default 50% means 50.
    (14, r"50\%", r"\boxed{0.5}", Incorrect, defaults),
    (15, "18", r"\boxed{\$18}", Correct, defaults),
    (16, "18", r"\boxed{18 \text{ dollars}}", Correct, defaults),
    (17, "10", r"\boxed{10\text{ cm}}", Correct, defaults),
    (18, "42", "#### 42", Correct, defaults),
    // DELIBERATE (math-verify: False): the R1 answer tag is an anchor.
    (19, "42", "<answer>42</answer>", Correct, defaults),
    (20, "42", r"\boxed{42.0}", Correct, defaults),
    // DELIBERATE (math-verify: False): a trailing period is punctuation.
    (21, "7", r"\boxed{7.}", Correct, defaults),
    // DELIBERATE (math-verify: False): scientific notation is a literal (bounded exponent).
    (22, "100", r"\boxed{1e2}", Correct, defaults),
    (23, "3", r"\boxed{x = 3}", Correct, defaults),
    (24, r"\frac{1}{3}", r"\boxed{0.333}", Incorrect, defaults),
    (25, r"\frac{1}{3}", r"\boxed{0.333}", Correct, |c| {
        c.rel_tol = 1e-3
    }),
    // DELIBERATE (math-verify: False): the last anchor wins.
    (
        26,
        "6",
        r"\boxed{5} … wait no, \boxed{6}",
        Correct,
        defaults,
    ),
    (27, "5", r"\boxed{5 or 6}", MultipleAnswers, defaults),
    (
        28,
        r"\frac{5}{4}",
        r"\boxed{1\frac{1}{4}}",
        Correct,
        defaults,
    ),
    (29, "73", "Final Answer: **73**", Correct, defaults),
    // DELIBERATE (math-verify: True): restating the question is not an answer.
    (30, "3367", r"\boxed{37 \times 91}", Incorrect, defaults),
    (31, "3367", r"\boxed{37 \times 91}", Correct, |c| {
        c.policy = Policy::Expression
    }),
    // DELIBERATE (math-verify: True): a fraction not in lowest terms still needs computing.
    (32, "12", r"\boxed{\frac{144}{12}}", Incorrect, defaults),
    (33, "18", r"The answer is \boxed{18", NoAnswer, defaults),
    (
        34,
        "42",
        r"<think>\boxed{42}</think> so \boxed{41}",
        Incorrect,
        defaults,
    ),
    (35, "42", r"<think>\boxed{42}</think>", NoAnswer, defaults),
    (36, "-7", "\\boxed{\u{2212}7}", Correct, defaults),
    (37, "42", "", NoAnswer, defaults),
    (38, "abc", r"\boxed{42}", GoldInvalid, defaults),
    // math-verify: True; without an anchor there is no final answer by default…
    (39, "1000", "The answer is 1,000.", NoAnswer, defaults),
    // …unless extraction is told to be lenient.
    (40, "1000", "The answer is 1,000.", Correct, |c| {
        c.extract = Extract::LastNumber
    }),
    (41, "19", "19", Correct, |c| c.extract = Extract::Whole),
    (42, "19", "19 apples", Unparseable, |c| {
        c.extract = Extract::Whole
    }),
];

#[test]
fn golden_verdicts() {
    let mut failures = Vec::new();
    for &(number, gold, completion, expected, settings) in CASES {
        let mut config = ArithmeticConfig::default();
        settings(&mut config);
        let judgement = ArithmeticChecker::new(config)
            .unwrap()
            .judge(gold, completion);
        if judgement.verdict != expected {
            failures.push(format!(
                "case {number}: gold {gold:?}, completion {completion:?}: expected {expected:?}, got {:?} ({})",
                judgement.verdict, judgement.details
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn percent_as_fraction_option() {
    let config = ArithmeticConfig {
        percent: Percent::Fraction,
        ..Default::default()
    };
    let checker = ArithmeticChecker::new(config).unwrap();
    assert_eq!(checker.judge(r"50\%", r"\boxed{0.5}").verdict, Correct);
    assert_eq!(checker.judge(r"50\%", r"\boxed{50\%}").verdict, Correct);
    assert_eq!(checker.judge(r"50\%", r"\boxed{50}").verdict, Incorrect);
}

#[test]
fn every_case_of_the_shared_table_is_here() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/VERIFIER-CASES.md"
    );
    let Ok(table) = std::fs::read_to_string(path) else {
        eprintln!("skipped: {path} is absent");
        return;
    };
    let numbers: Vec<u32> = table
        .lines()
        .filter_map(|line| {
            line.strip_prefix("| ")?
                .split(" |")
                .next()?
                .trim()
                .parse()
                .ok()
        })
        .collect();
    let ours: Vec<u32> = CASES.iter().map(|c| c.0).collect();
    assert_eq!(
        numbers, ours,
        "the shared table and this test list different cases"
    );
}
