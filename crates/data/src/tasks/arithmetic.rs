//! Arithmetic word-and-symbol problems: "What is 12+7*3?" → `33`, with the usual precedence.

use serde::{Deserialize, Serialize};

use super::{
    Operator, Split, Task, check_fraction, check_pairs, check_templates, draw_distinct, holds_pair,
    on_side, operator_string,
};
use crate::error::{DataError, Result};
use crate::row::Row;
use grpo_base::SplitMix64;

/// Settings of the arithmetic task. Rows carry `prompt`, `answer` (the integer as a string,
/// what the arithmetic verifier reads), `steps` (the worked solution, one operation at a time:
/// `7*3=21,12+21=33`), `expression`, `operators`, `template` and `split`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ArithmeticTask {
    /// Operand digits in training, `min_digits..=max_digits` (1 digit means 0–9).
    pub min_digits: u32,
    pub max_digits: u32,
    /// `ood_length` operands have up to this many digits, at least one of them more than
    /// `max_digits`.
    pub ood_digits: u32,
    /// Operators per problem, `1..=max_operations` (`ood_composition` needs 2 or more).
    pub max_operations: usize,
    /// The operators problems use (`+ - *`).
    pub operators: Vec<Operator>,
    /// Operator pairs never seen together in training; problems holding one make up
    /// `ood_composition`.
    pub held_out_pairs: Vec<[Operator; 2]>,
    /// Instruction templates of training; `{expr}` is the problem in symbols (`12+7`),
    /// `{words}` in words (`12 plus 7`).
    pub templates: Vec<String>,
    /// Templates only `ood_template` uses.
    pub held_out_templates: Vec<String>,
    /// Share of problems on the test side of the train/test partition.
    pub test_fraction: f64,
}

impl Default for ArithmeticTask {
    fn default() -> Self {
        let strings = |list: &[&str]| list.iter().map(|s| s.to_string()).collect();
        ArithmeticTask {
            min_digits: 1,
            max_digits: 2,
            ood_digits: 3,
            max_operations: 2,
            operators: vec![Operator::Add, Operator::Sub, Operator::Mul],
            held_out_pairs: vec![[Operator::Add, Operator::Mul]],
            templates: strings(&[
                "What is {expr}?",
                "{expr}=",
                "Compute {words}.",
                "Calculate {expr}.",
                "What is {words}?",
                "Evaluate: {expr}",
            ]),
            held_out_templates: strings(&[
                "Find the value of {expr}.",
                "How much is {words}?",
                "{expr} equals what?",
            ]),
            test_fraction: 0.1,
        }
    }
}

impl ArithmeticTask {
    pub fn validate(&self) -> Result<()> {
        if self.min_digits == 0 || self.min_digits > self.max_digits {
            return Err(DataError::config(
                "min_digits",
                format!(
                    "need 1 <= min_digits <= max_digits, got {} and {}",
                    self.min_digits, self.max_digits
                ),
            ));
        }
        // 9-digit operands and 3 operators stay far inside i128.
        if self.ood_digits <= self.max_digits || self.ood_digits > 9 {
            return Err(DataError::config(
                "ood_digits",
                format!(
                    "must be more than max_digits ({}) and at most 9, got {}",
                    self.max_digits, self.ood_digits
                ),
            ));
        }
        if !(2..=3).contains(&self.max_operations) {
            return Err(DataError::config(
                "max_operations",
                format!(
                    "must be 2 or 3 (ood_composition needs two operators in a problem), got {}",
                    self.max_operations
                ),
            ));
        }
        if self.operators.is_empty() || self.operators.contains(&Operator::Div) {
            return Err(DataError::config(
                "operators",
                "must be a non-empty list of + - * (division would give fractions)",
            ));
        }
        check_pairs(&self.held_out_pairs, &self.operators)?;
        check_templates(
            &self.templates,
            &self.held_out_templates,
            &["{expr}", "{words}"],
        )?;
        check_fraction(self.test_fraction)
    }

    /// One random problem of `split`, or `None` when the draw does not belong to it.
    fn draw(&self, split: Split, rng: &mut SplitMix64) -> Option<Row> {
        let min_ops = if split == Split::OodComposition { 2 } else { 1 };
        let count = rng.range(min_ops, self.max_operations as u64) as usize;
        let operators: Vec<Operator> = (0..count).map(|_| *rng.pick(&self.operators)).collect();
        if holds_pair(&operators, &self.held_out_pairs) != (split == Split::OodComposition) {
            return None;
        }
        let most_digits = if split == Split::OodLength {
            self.ood_digits
        } else {
            self.max_digits
        };
        let operands: Vec<i128> = (0..=count)
            .map(|_| {
                let digits = rng.range(self.min_digits as u64, most_digits as u64) as u32;
                let low = if digits == 1 {
                    0
                } else {
                    10i128.pow(digits - 1)
                };
                low + rng.below((10i128.pow(digits) - low) as u64) as i128
            })
            .collect();
        let longest = operands.iter().map(|&n| digit_count(n)).max().unwrap_or(1);
        if (split == Split::OodLength) != (longest > self.max_digits) {
            return None;
        }
        let expression = render(&operands, &operators, |op| op.symbol().to_string(), "");
        if !on_side(split, &expression, self.test_fraction) {
            return None;
        }
        let words = render(&operands, &operators, |op| op.word().to_string(), " ");
        let (answer, steps) = work(&operands, &operators);
        let templates = if split == Split::OodTemplate {
            &self.held_out_templates
        } else {
            &self.templates
        };
        let template = rng.pick(templates);
        let prompt = template
            .replace("{expr}", &expression)
            .replace("{words}", &words);
        Some(
            Row::from_prompt(prompt)
                .with("answer", answer.to_string())
                .with("steps", steps)
                .with("expression", expression)
                .with("operators", operator_string(&operators))
                .with("template", template.as_str())
                .with("task", "arithmetic"),
        )
    }
}

impl Task for ArithmeticTask {
    fn name(&self) -> &'static str {
        "arithmetic"
    }

    fn generate(&self, split: Split, n: usize, seed: u64) -> Result<Vec<Row>> {
        self.validate()?;
        draw_distinct(self.name(), split, n, seed, |rng| self.draw(split, rng))
    }
}

fn digit_count(n: i128) -> u32 {
    n.unsigned_abs().checked_ilog10().unwrap_or(0) + 1
}

/// `12+7*3` or `12 plus 7 times 3`.
fn render(
    operands: &[i128],
    operators: &[Operator],
    name: impl Fn(Operator) -> String,
    gap: &str,
) -> String {
    let mut out = operands[0].to_string();
    for (op, n) in operators.iter().zip(&operands[1..]) {
        out.push_str(gap);
        out.push_str(&name(*op));
        out.push_str(gap);
        out.push_str(&n.to_string());
    }
    out
}

/// The value, with `*` binding tighter than `+` and `-` and left to right otherwise, and the
/// worked solution that reaches it one operation per step: products first, then sums and
/// differences (`12+7*3` → 33, `7*3=21,12+21=33`). Every intermediate result is written, so a
/// problem is a chain of facts a small model also meets in other problems — what lets it solve
/// combinations it never trained on.
fn work(operands: &[i128], operators: &[Operator]) -> (i128, String) {
    let mut values = operands.to_vec();
    let mut ops = operators.to_vec();
    let mut steps = Vec::with_capacity(ops.len());
    let mut apply = |values: &mut Vec<i128>, ops: &mut Vec<Operator>, i: usize| {
        let (a, b, op) = (values[i], values[i + 1], ops[i]);
        let c = match op {
            Operator::Add => a + b,
            Operator::Sub => a - b,
            Operator::Mul => a * b,
            Operator::Div => unreachable!("validate() refuses division"),
        };
        steps.push(format!("{a}{}{b}={c}", op.symbol()));
        values.splice(i..=i + 1, [c]);
        ops.remove(i);
    };
    while let Some(i) = ops.iter().position(|&op| op == Operator::Mul) {
        apply(&mut values, &mut ops, i);
    }
    while !ops.is_empty() {
        apply(&mut values, &mut ops, 0);
    }
    (values[0], steps.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_is_the_usual_one() {
        use Operator::*;
        let value = |operands: &[i128], operators: &[Operator]| work(operands, operators).0;
        assert_eq!(value(&[12, 7, 3], &[Mul, Sub]), 81);
        assert_eq!(value(&[5, 9], &[Sub]), -4);
        assert_eq!(
            work(&[12, 7, 3], &[Add, Mul]),
            (33, "7*3=21,12+21=33".into())
        );
        assert_eq!(
            work(&[2, 3, 4, 5], &[Sub, Mul, Add]),
            (-5, "3*4=12,2-12=-10,-10+5=-5".into())
        );
        assert_eq!(digit_count(0), 1);
        assert_eq!(digit_count(99), 2);
        assert_eq!(digit_count(100), 3);
    }

    #[test]
    fn bad_settings_name_their_field() {
        let bad = |task: ArithmeticTask| match task.validate() {
            Err(DataError::Config { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        let base = ArithmeticTask::default();
        assert_eq!(
            bad(ArithmeticTask {
                ood_digits: 2,
                ..base.clone()
            }),
            "ood_digits"
        );
        assert_eq!(
            bad(ArithmeticTask {
                operators: vec![Operator::Div],
                ..base.clone()
            }),
            "operators"
        );
        assert_eq!(
            bad(ArithmeticTask {
                held_out_templates: vec!["What is {expr}?".into()],
                ..base.clone()
            }),
            "held_out_templates"
        );
        assert_eq!(
            bad(ArithmeticTask {
                templates: vec!["no slot".into()],
                ..base.clone()
            }),
            "templates"
        );
        assert_eq!(
            bad(ArithmeticTask {
                test_fraction: 1.0,
                ..base
            }),
            "test_fraction"
        );
    }
}
