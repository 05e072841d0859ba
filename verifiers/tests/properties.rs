//! Invariants of the arithmetic checker on generated input: it never panics, stays bounded on
//! pathological numbers, accepts every way of writing the gold, and never accepts a wrong number.

use grpo_verifiers::arithmetic::{ArithmeticChecker, ArithmeticConfig, Extract, Policy, Verdict};
use proptest::prelude::*;

fn checker(policy: Policy, extract: Extract) -> ArithmeticChecker {
    ArithmeticChecker::new(ArithmeticConfig {
        policy,
        extract,
        ..Default::default()
    })
    .unwrap()
}

fn all_checkers() -> Vec<ArithmeticChecker> {
    let mut all = Vec::new();
    for policy in [Policy::Literal, Policy::Expression] {
        for extract in [Extract::Anchors, Extract::LastNumber, Extract::Whole] {
            all.push(checker(policy, extract));
        }
    }
    all
}

/// `1234567` → `1,234,567` (with `separator`).
fn grouped(n: i64, separator: &str) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push_str(separator);
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// Text that looks like math: where the parsers' corner cases live.
fn mathy() -> impl Strategy<Value = String> {
    proptest::string::string_regex(
        r"(\\boxed\{|\\frac|\\text\{|<answer>|</answer>|</think>|####|Answer:|[0-9]{1,4}|[{}(),./^*+ %$=x-]|\\times|\\,|e){0,40}",
    )
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn never_panics_on_arbitrary_text(gold in any::<String>(), completion in any::<String>()) {
        for checker in all_checkers() {
            let _ = checker.judge(&gold, &completion);
        }
    }

    #[test]
    fn never_panics_on_mathy_text(gold in mathy(), completion in mathy()) {
        for checker in all_checkers() {
            let _ = checker.judge(&gold, &completion);
        }
    }

    /// Every presentation the README says is stripped, in combination and in either order:
    /// markdown emphasis around currency, the number, a period or `!` inside or outside the
    /// emphasis, under every anchor.
    #[test]
    fn presentations_in_combination_are_stripped(
        n in any::<i64>(),
        emphasis in prop::sample::select(vec!["", "**", "*", "__", "_"]),
        currency in prop::sample::select(vec!["", "$", r"\$", "€"]),
        inside in prop::sample::select(vec!["", ".", "!"]),
        outside in prop::sample::select(vec!["", ".", "!"]),
        grouping in prop::sample::select(vec!["", ",", "{,}"]),
        anchor in 0usize..4,
    ) {
        let literal = checker(Policy::Literal, Extract::Anchors);
        let number = if grouping.is_empty() { n.to_string() } else { grouped(n, grouping) };
        let answer = format!("{emphasis}{currency}{number}{inside}{emphasis}{outside}");
        let completion = match anchor {
            0 => format!("So the total is:\n#### {answer}"),
            1 => format!("Working done.\nAnswer: {answer}"),
            2 => format!(r"Thus \boxed{{{answer}}}"),
            _ => format!("<answer>{answer}</answer>"),
        };
        let judged = literal.judge(&n.to_string(), &completion);
        prop_assert_eq!(judged.verdict, Verdict::Correct, "{}", completion);
        // And the same presentation of another number is incorrect, never correct.
        let wrong = literal.judge(&n.wrapping_add(1).to_string(), &completion);
        prop_assert_eq!(wrong.verdict, Verdict::Incorrect, "{}", completion);
    }

    #[test]
    fn every_way_of_writing_the_gold_is_correct(n in any::<i64>()) {
        let literal = checker(Policy::Literal, Extract::Anchors);
        let gold = n.to_string();
        for written in [gold.clone(), format!("{n}.0"), format!("{n}.000"), grouped(n, ","), grouped(n, r"\,"), grouped(n, "{,}")] {
            let completion = format!(r"so \boxed{{{written}}}");
            prop_assert_eq!(literal.judge(&gold, &completion).verdict, Verdict::Correct, "{}", written);
        }
        // Forms that still need computing: correct under the expression policy, and as a gold.
        let expression = checker(Policy::Expression, Extract::Anchors);
        for written in [format!("{n}/1"), format!(r"\frac{{{}}}{{2}}", i128::from(n) * 2)] {
            let completion = format!(r"\boxed{{{written}}}");
            prop_assert_eq!(expression.judge(&gold, &completion).verdict, Verdict::Correct, "{}", written);
            prop_assert_eq!(literal.judge(&written, &format!(r"\boxed{{{n}}}")).verdict, Verdict::Correct, "gold {}", written);
        }
    }

    #[test]
    fn a_wrong_number_is_never_correct(n in any::<i64>(), m in any::<i64>(), places in 0usize..4) {
        prop_assume!(n != m);
        let scale = 10i128.pow(places as u32);
        // n and m read as decimals with `places` places: different values.
        let decimal = |v: i64| {
            let v = i128::from(v);
            let sign = if v < 0 { "-" } else { "" };
            let (whole, frac) = (v.abs() / scale, v.abs() % scale);
            if places == 0 { format!("{sign}{whole}") } else { format!("{sign}{whole}.{frac:0places$}") }
        };
        for checker in all_checkers() {
            let verdict = checker.judge(&decimal(n), &format!(r"\boxed{{{}}}", decimal(m))).verdict;
            prop_assert_ne!(verdict, Verdict::Correct);
            let verdict = checker.judge(&n.to_string(), &format!("#### {}", grouped(m, ","))).verdict;
            prop_assert_ne!(verdict, Verdict::Correct);
        }
    }

    #[test]
    fn a_wrong_fraction_is_never_correct(a in 1i64..1000, b in 2i64..1000, c in 1i64..1000, d in 2i64..1000) {
        prop_assume!(i128::from(a) * i128::from(d) != i128::from(c) * i128::from(b));
        for checker in all_checkers() {
            let verdict = checker.judge(&format!("{a}/{b}"), &format!(r"\boxed{{\frac{{{c}}}{{{d}}}}}")).verdict;
            prop_assert_ne!(verdict, Verdict::Correct);
        }
    }
}

/// Inputs that would take a naive checker minutes or gigabytes; each must come back at once
/// with a verdict (no timing assertion: a regression shows as a test that hangs).
#[test]
fn pathological_numbers_are_refused_not_computed() {
    let literal = checker(Policy::Literal, Extract::Anchors);
    let expression = checker(Policy::Expression, Extract::Anchors);
    let huge = "9".repeat(1_000_000);
    let cases = [
        (format!(r"\boxed{{{huge}}}"), Verdict::Unparseable),
        (r"\boxed{10^10^10}".to_owned(), Verdict::Unparseable),
        (r"\boxed{9^9^9^9}".to_owned(), Verdict::Unparseable),
        (r"\boxed{2^{100000}}".to_owned(), Verdict::Unparseable),
        (r"\boxed{1e999999999}".to_owned(), Verdict::Unparseable),
        (
            format!(r"\boxed{{{}1{}}}", "(".repeat(10_000), ")".repeat(10_000)),
            Verdict::Unparseable,
        ),
        (
            format!(r"\boxed{{{}}}", "1+".repeat(100_000) + "1"),
            Verdict::Unparseable,
        ),
    ];
    for (completion, expected) in &cases {
        let shown: String = completion.chars().take(40).collect();
        assert_eq!(
            expression.judge("5", completion).verdict,
            *expected,
            "{shown}"
        );
        assert_ne!(
            literal.judge("5", completion).verdict,
            Verdict::Correct,
            "{shown}"
        );
    }
    // A megabyte of digits as gold, and as the last number of a completion.
    assert_eq!(
        literal.judge(&huge, r"\boxed{5}").verdict,
        Verdict::GoldInvalid
    );
    let last_number = checker(Policy::Literal, Extract::LastNumber);
    assert_eq!(
        last_number.judge("5", &format!("x {huge}")).verdict,
        Verdict::Unparseable
    );
}
