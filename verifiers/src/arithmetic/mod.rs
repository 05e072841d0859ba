//! The arithmetic checker: is the completion's final answer the gold number?
//!
//! Extraction ([`extract`]), presentation stripping ([`normalize`]), literal parsing
//! ([`number`]) and the bounded evaluator ([`expression`]) are each in their own file; this
//! one holds the configuration and the verdict. The golden cases the default settings must
//! satisfy are in `shared/VERIFIER-CASES.md` (tested in `tests/verifier_cases.rs`).

pub mod expression;
pub mod extract;
pub mod normalize;
pub mod number;

use serde::Deserialize;
use serde_json::Value;

pub use num_rational::BigRational as Rational;
use num_traits::Signed;

use crate::{ConfigError, Sample, Score, Verifier, VerifyError};
use expression::Expression;
pub use extract::Extract;
use normalize::{Normalized, normalize};
use number::{Literal, LiteralError, parse_literal, pow10};

/// Longest final answer that is read at all; longer ones are unparseable.
pub const MAX_ANSWER_BYTES: usize = 4_096;

/// What the final answer may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// A number written out; anything still to compute (`37 \times 91`, `\frac{144}{12}`) is
    /// incorrect, or a model learns to restate the question.
    #[default]
    Literal,
    /// Any arithmetic expression, evaluated exactly (bounded): for countdown-style tasks.
    Expression,
}

/// What a `%` means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Percent {
    /// `50%` means 50 (GSM8K's convention: the gold of "what percent" questions is 50).
    #[default]
    Strip,
    /// `50%` means 1/2.
    Fraction,
}

/// Settings of the arithmetic checker; the TOML keys of `kind = "arithmetic"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArithmeticConfig {
    /// The row field that holds the gold answer (a string or a JSON number).
    pub answer_field: String,
    pub extract: Extract,
    pub policy: Policy,
    /// Expression policy only: the row field listing numbers that the answer must use,
    /// each exactly once (countdown).
    pub numbers_field: Option<String>,
    /// Accept `|answer − gold| ≤ rel_tol · |gold|`; 0 means exact.
    pub rel_tol: f64,
    /// When the gold is a decimal with d places, round the answer to d places first.
    pub round_to_gold_places: bool,
    pub percent: Percent,
}

impl Default for ArithmeticConfig {
    fn default() -> Self {
        ArithmeticConfig {
            answer_field: "answer".into(),
            extract: Extract::Anchors,
            policy: Policy::Literal,
            numbers_field: None,
            rel_tol: 0.0,
            round_to_gold_places: false,
            percent: Percent::Strip,
        }
    }
}

/// The checker's verdict on one completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Correct,
    Incorrect,
    /// No final answer was found (no anchor, or nothing after `</think>`).
    NoAnswer,
    /// A final answer was found but is not a number (nor, under the expression policy, an
    /// expression that evaluates).
    Unparseable,
    /// The final answer hedges between different values (`5 or 6`).
    MultipleAnswers,
    /// The gold answer itself is not a number: the sample is unscorable.
    GoldInvalid,
}

/// A verdict with the final answer it was about and a sentence saying why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    pub verdict: Verdict,
    pub answer: Option<String>,
    pub details: String,
}

/// The arithmetic checker. Every call is bounded in time and memory whatever the input.
///
/// ```
/// use grpo_verifiers::arithmetic::{ArithmeticChecker, ArithmeticConfig, Verdict};
///
/// let checker = ArithmeticChecker::new(ArithmeticConfig::default()).unwrap();
/// assert_eq!(checker.judge("1000", r"so \boxed{1,000}").verdict, Verdict::Correct);
/// assert_eq!(checker.judge("3367", r"\boxed{37 \times 91}").verdict, Verdict::Incorrect);
/// ```
#[derive(Debug, Clone)]
pub struct ArithmeticChecker {
    config: ArithmeticConfig,
    rel_tol: Rational,
}

/// What a final answer reads as.
enum Reading {
    Value {
        value: Rational,
        /// The numbers it writes (the value itself for a literal).
        numbers: Vec<Rational>,
    },
    NeedsComputing,
    Unparseable(String),
    Several(Vec<String>),
}

impl ArithmeticChecker {
    pub fn new(config: ArithmeticConfig) -> Result<Self, ConfigError> {
        if !(config.rel_tol.is_finite() && config.rel_tol >= 0.0) {
            return Err(ConfigError::invalid(
                "rel_tol",
                format!("must be a finite number ≥ 0, got {}", config.rel_tol),
            ));
        }
        // The tolerance a person typed (`1e-3`), as the exact decimal they meant.
        let rel_tol = parse_literal(&format!("{}", config.rel_tol))
            .map_err(|e| ConfigError::invalid("rel_tol", e.to_string()))?
            .value;
        if config.numbers_field.is_some() && config.policy != Policy::Expression {
            return Err(ConfigError::invalid(
                "numbers_field",
                "only applies with policy = \"expression\"",
            ));
        }
        if config.answer_field.is_empty() {
            return Err(ConfigError::invalid("answer_field", "must not be empty"));
        }
        Ok(ArithmeticChecker { config, rel_tol })
    }

    pub fn config(&self) -> &ArithmeticConfig {
        &self.config
    }

    /// Judges `completion` against `gold`, ignoring `numbers_field`.
    pub fn judge(&self, gold: &str, completion: &str) -> Judgement {
        self.judge_with_numbers(gold, completion, None)
    }

    /// Judges `completion` against `gold`; with `numbers`, the answer must be an expression
    /// that uses each of them exactly once.
    pub fn judge_with_numbers(
        &self,
        gold: &str,
        completion: &str,
        numbers: Option<&[Rational]>,
    ) -> Judgement {
        let judgement = |verdict, answer: Option<&str>, details: String| Judgement {
            verdict,
            answer: answer.map(str::to_owned),
            details,
        };
        let (gold_value, gold_places) = match self.gold(gold) {
            Ok(gold) => gold,
            Err(reason) => {
                return judgement(
                    Verdict::GoldInvalid,
                    None,
                    format!("`{}` {reason}", clip(gold)),
                );
            }
        };
        let Some(answer) = extract::final_answer(completion, self.config.extract) else {
            return judgement(Verdict::NoAnswer, None, "no final answer found".into());
        };
        if answer.len() > MAX_ANSWER_BYTES {
            return judgement(
                Verdict::Unparseable,
                Some(&clip(answer)),
                format!("final answer is over {MAX_ANSWER_BYTES} bytes"),
            );
        }
        let shown = clip(answer);
        let (value, used) = match self.read(&normalize(answer)) {
            Reading::Value { value, numbers } => (value, numbers),
            Reading::NeedsComputing => {
                return judgement(
                    Verdict::Incorrect,
                    Some(answer),
                    format!("`{shown}` still needs computing (policy = \"literal\")"),
                );
            }
            Reading::Unparseable(reason) => {
                return judgement(
                    Verdict::Unparseable,
                    Some(answer),
                    format!("`{shown}`: {reason}"),
                );
            }
            Reading::Several(parts) => {
                return judgement(
                    Verdict::MultipleAnswers,
                    Some(answer),
                    format!("several different final answers: {}", parts.join(" | ")),
                );
            }
        };
        if let Some(required) = numbers {
            let (mut used, mut required) = (used, required.to_vec());
            used.sort();
            required.sort();
            if used != required {
                return judgement(
                    Verdict::Incorrect,
                    Some(answer),
                    format!(
                        "`{shown}` uses [{}] but must use each of [{}] exactly once",
                        list(&used),
                        list(&required)
                    ),
                );
            }
        }
        let value = match gold_places {
            Some(places) if self.config.round_to_gold_places => {
                let scale = Rational::from_integer(pow10(places));
                (value * &scale).round() / scale
            }
            _ => value,
        };
        let tolerance = &self.rel_tol * gold_value.abs();
        if (&value - &gold_value).abs() <= tolerance {
            judgement(
                Verdict::Correct,
                Some(answer),
                format!("`{shown}` = {gold_value}"),
            )
        } else {
            judgement(
                Verdict::Incorrect,
                Some(answer),
                format!("`{shown}` = {} ≠ {gold_value}", clip(&value.to_string())),
            )
        }
    }

    /// The gold's value and decimal places. A gold may be an expression (a dataset may write
    /// `\frac{4}{8}`); it must evaluate.
    fn gold(&self, gold: &str) -> Result<(Rational, Option<u32>), String> {
        if gold.len() > MAX_ANSWER_BYTES {
            return Err(format!("is over {MAX_ANSWER_BYTES} bytes"));
        }
        let normalized = normalize(gold);
        let (value, places) = match parse_literal(&normalized.text) {
            Ok(Literal {
                value,
                decimal_places,
            }) => (value, decimal_places),
            Err(LiteralError::TooLarge) => return Err(LiteralError::TooLarge.to_string()),
            Err(_) => {
                let value = Expression::parse(&normalized.text)
                    .and_then(|e| e.evaluate())
                    .map_err(|_| "is not a number".to_owned())?;
                (value, None)
            }
        };
        Ok((self.apply_percent(value, &normalized), places))
    }

    fn apply_percent(&self, value: Rational, normalized: &Normalized) -> Rational {
        if normalized.percent && self.config.percent == Percent::Fraction {
            value / Rational::from_integer(100.into())
        } else {
            value
        }
    }

    fn read(&self, normalized: &Normalized) -> Reading {
        let text = normalized.text.as_str();
        match parse_literal(text) {
            Ok(literal) => {
                let value = self.apply_percent(literal.value, normalized);
                return Reading::Value {
                    numbers: vec![value.clone()],
                    value,
                };
            }
            Err(LiteralError::TooLarge) => {
                return Reading::Unparseable(LiteralError::TooLarge.to_string());
            }
            Err(_) => {}
        }
        match Expression::parse(text) {
            Ok(expression) => {
                if self.config.policy == Policy::Literal && !expression.is_single_number() {
                    return Reading::NeedsComputing;
                }
                match expression.evaluate() {
                    Ok(value) => Reading::Value {
                        value: self.apply_percent(value, normalized),
                        numbers: expression.numbers().to_vec(),
                    },
                    Err(e) => Reading::Unparseable(e.to_string()),
                }
            }
            Err(e) => match several_values(text) {
                Some(parts) => Reading::Several(parts),
                None => Reading::Unparseable(match e {
                    expression::ExpressionError::Syntax(_) => "not a number".to_owned(),
                    other => other.to_string(),
                }),
            },
        }
    }
}

/// `5 or 6`, `x = 5, x = 6`, `5; 6`: the parts, when every part is a number or expression and
/// at least two values differ.
fn several_values(text: &str) -> Option<Vec<String>> {
    const SEPARATORS: [&str; 7] = [" or ", " and ", ";", ", ", "\\quad", "\\lor", "\\vee"];
    let mut marked = text.to_owned();
    for separator in SEPARATORS {
        marked = marked.replace(separator, "\u{1}");
    }
    let parts: Vec<&str> = marked.split('\u{1}').map(str::trim).collect();
    if parts.len() < 2 {
        return None;
    }
    let mut values = Vec::with_capacity(parts.len());
    for part in &parts {
        let normalized = normalize(part);
        let value = parse_literal(&normalized.text)
            .map(|l| l.value)
            .or_else(|_| Expression::parse(&normalized.text).and_then(|e| e.evaluate()));
        values.push(value.ok()?);
    }
    let differ = values.iter().any(|v| *v != values[0]);
    differ.then(|| parts.iter().map(|p| clip(p)).collect())
}

/// At most 80 characters of `text`, for messages.
fn clip(text: &str) -> String {
    match text.char_indices().nth(80) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

fn list(values: &[Rational]) -> String {
    values
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A row's gold answer as text: a string as it is, a JSON number written out.
fn gold_text<'a>(value: &'a Value, field: &str) -> Result<std::borrow::Cow<'a, str>, VerifyError> {
    match value {
        Value::String(text) => Ok(text.into()),
        Value::Number(number) => Ok(number.to_string().into()),
        other => Err(VerifyError::InvalidField {
            field: field.to_owned(),
            reason: format!("expected a string or number, got {other}"),
        }),
    }
}

impl Verifier for ArithmeticChecker {
    fn verify(&self, sample: &Sample<'_>) -> Result<Score, VerifyError> {
        let field = &self.config.answer_field;
        let gold = gold_text(sample.field(field)?, field)?;
        let numbers = match &self.config.numbers_field {
            None => None,
            Some(name) => Some(required_numbers(sample.field(name)?, name)?),
        };
        let judgement = self.judge_with_numbers(&gold, sample.completion, numbers.as_deref());
        match judgement.verdict {
            Verdict::GoldInvalid => Err(VerifyError::InvalidGold {
                gold: clip(&gold),
                reason: judgement.details,
            }),
            verdict => Ok(Score::binary(
                verdict == Verdict::Correct,
                judgement.details,
            )),
        }
    }

    fn is_bounded(&self) -> bool {
        true
    }
}

/// The `numbers` field of a countdown row: a list of numbers (JSON numbers or strings).
fn required_numbers(value: &Value, field: &str) -> Result<Vec<Rational>, VerifyError> {
    let invalid = |reason: String| VerifyError::InvalidField {
        field: field.to_owned(),
        reason,
    };
    let items = value
        .as_array()
        .ok_or_else(|| invalid(format!("expected a list of numbers, got {value}")))?;
    items
        .iter()
        .map(|item| {
            let text = gold_text(item, field)?;
            parse_literal(&text)
                .map(|l| l.value)
                .map_err(|e| invalid(format!("`{text}`: {e}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checker(change: impl FnOnce(&mut ArithmeticConfig)) -> ArithmeticChecker {
        let mut config = ArithmeticConfig::default();
        change(&mut config);
        ArithmeticChecker::new(config).unwrap()
    }

    #[test]
    fn rounding_to_the_gold_places() {
        let rounding = checker(|c| c.round_to_gold_places = true);
        assert_eq!(
            rounding.judge("3.14", r"\boxed{3.14159}").verdict,
            Verdict::Correct
        );
        assert_eq!(
            rounding.judge("3.14", r"\boxed{3.146}").verdict,
            Verdict::Incorrect
        );
        assert_eq!(
            rounding.judge("-0.5", r"\boxed{-0.45}").verdict,
            Verdict::Correct,
            "half away from zero"
        );
        // An integer gold has no places to round to: 18.4 is not 18.
        assert_eq!(
            rounding.judge("18", r"\boxed{18.4}").verdict,
            Verdict::Incorrect
        );
        let exact = checker(|_| {});
        assert_eq!(
            exact.judge("3.14", r"\boxed{3.14159}").verdict,
            Verdict::Incorrect
        );
    }

    #[test]
    fn relative_tolerance_is_the_decimal_typed() {
        let tolerant = checker(|c| c.rel_tol = 0.01);
        assert_eq!(
            tolerant.judge("100", r"\boxed{101}").verdict,
            Verdict::Correct,
            "exactly at the bound"
        );
        assert_eq!(
            tolerant.judge("100", r"\boxed{101.0001}").verdict,
            Verdict::Incorrect
        );
        assert_eq!(
            tolerant.judge("0", r"\boxed{0.0001}").verdict,
            Verdict::Incorrect,
            "relative to 0 is exact"
        );
        assert!(
            ArithmeticChecker::new(ArithmeticConfig {
                rel_tol: f64::NAN,
                ..Default::default()
            })
            .is_err()
        );
    }

    #[test]
    fn countdown_numbers_are_a_multiset() {
        let countdown = checker(|c| c.policy = Policy::Expression);
        let numbers: Vec<Rational> = [2, 2, 6]
            .iter()
            .map(|&n| Rational::from_integer(n.into()))
            .collect();
        let judge = |text: &str| {
            countdown
                .judge_with_numbers("10", text, Some(&numbers))
                .verdict
        };
        assert_eq!(judge(r"\boxed{2 + 2 + 6}"), Verdict::Correct);
        assert_eq!(
            judge(r"\boxed{(6 - 2) * 2 + 2}"),
            Verdict::Incorrect,
            "2 used three times"
        );
        assert_eq!(judge(r"\boxed{6 + 2 * 2}"), Verdict::Correct);
        assert_eq!(judge(r"\boxed{10}"), Verdict::Incorrect);
    }

    #[test]
    fn verify_maps_fields_and_gold() {
        let arithmetic = checker(|_| {});
        let verify = |row: Value, completion: &str| {
            arithmetic.verify(&Sample::new("", completion, row.as_object().unwrap()))
        };
        assert_eq!(
            verify(serde_json::json!({"answer": 0.5}), r"\boxed{1/2}")
                .unwrap()
                .reward,
            1.0
        );
        assert_eq!(
            verify(serde_json::json!({}), r"\boxed{1}"),
            Err(VerifyError::MissingField {
                field: "answer".into()
            })
        );
        assert!(matches!(
            verify(serde_json::json!({"answer": [1]}), "x"),
            Err(VerifyError::InvalidField { .. })
        ));
        let error = verify(serde_json::json!({"answer": "n/a"}), r"\boxed{1}").unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid gold answer: `n/a` is not a number"
        );
        // A wrong answer is a score of 0, never an error.
        let wrong = verify(serde_json::json!({"answer": "2"}), "no answer here").unwrap();
        assert_eq!((wrong.reward, wrong.correct), (0.0, Some(false)));
    }
}
