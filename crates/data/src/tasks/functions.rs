//! One-line Python functions from input/output examples: the prompt shows `f(1) == 4`, … and
//! `def f(x):\n    return `, the model completes the expression (`x + 3`). Rows are HumanEval
//! style (`prompt`, `test` defining `check(candidate)` with the shown and two hidden cases,
//! `entry_point`), so the sandboxed unit-test runner scores them.

use serde::{Deserialize, Serialize};

use super::{
    Operator, Split, Task, check_fraction, check_pairs, check_templates, draw_distinct, holds_pair,
    on_side, operator_string,
};
use crate::error::{DataError, Result};
use crate::row::Row;
use grpo_base::SplitMix64;

/// Settings of the functions task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FunctionTask {
    /// Constants in training are `1..=max_constant`; `ood_length` uses two-digit ones above it.
    pub max_constant: i64,
    /// Operators of `x OP a` and `(x OP a) OP b`.
    pub operators: Vec<Operator>,
    /// Pairs never composed in training; `ood_composition` composes them.
    pub held_out_pairs: Vec<[Operator; 2]>,
    /// Inputs shown in the prompt; two more are tested hidden.
    pub shown: usize,
    /// Templates with `{examples}` (one `f(x) == y` per line, each prefixed by `# `).
    pub templates: Vec<String>,
    pub held_out_templates: Vec<String>,
    pub test_fraction: f64,
}

impl Default for FunctionTask {
    fn default() -> Self {
        let strings = |list: &[&str]| list.iter().map(|s| s.to_string()).collect();
        FunctionTask {
            max_constant: 9,
            operators: vec![Operator::Add, Operator::Sub, Operator::Mul],
            held_out_pairs: vec![[Operator::Mul, Operator::Sub]],
            shown: 3,
            templates: strings(&[
                "{examples}def f(x):\n    return ",
                "# Write f.\n{examples}def f(x):\n    return ",
            ]),
            held_out_templates: strings(&["# Make these true:\n{examples}def f(x):\n    return "]),
            test_fraction: 0.1,
        }
    }
}

impl FunctionTask {
    pub fn validate(&self) -> Result<()> {
        if !(1..=50).contains(&self.max_constant) {
            return Err(DataError::config(
                "max_constant",
                format!("must be in 1..=50, got {}", self.max_constant),
            ));
        }
        if self.operators.is_empty() || self.operators.contains(&Operator::Div) {
            return Err(DataError::config(
                "operators",
                "must be a non-empty list of + - *",
            ));
        }
        if !(1..=6).contains(&self.shown) {
            return Err(DataError::config(
                "shown",
                format!("must be in 1..=6, got {}", self.shown),
            ));
        }
        check_pairs(&self.held_out_pairs, &self.operators)?;
        check_templates(&self.templates, &self.held_out_templates, &["{examples}"])?;
        check_fraction(self.test_fraction)
    }

    fn draw(&self, split: Split, rng: &mut SplitMix64) -> Option<Row> {
        let count = if split == Split::OodComposition {
            2
        } else {
            rng.range(1, 2) as usize
        };
        let operators: Vec<Operator> = (0..count).map(|_| *rng.pick(&self.operators)).collect();
        if holds_pair(&operators, &self.held_out_pairs) != (split == Split::OodComposition) {
            return None;
        }
        let constant = |rng: &mut SplitMix64| {
            if split == Split::OodLength {
                rng.range(self.max_constant as u64 + 1, 99) as i64
            } else {
                rng.range(1, self.max_constant as u64) as i64
            }
        };
        let constants: Vec<i64> = (0..count).map(|_| constant(rng)).collect();
        let expression = match count {
            1 => format!("x {} {}", operators[0].symbol(), constants[0]),
            _ => format!(
                "(x {} {}) {} {}",
                operators[0].symbol(),
                constants[0],
                operators[1].symbol(),
                constants[1]
            ),
        };
        if !on_side(split, &expression, self.test_fraction) {
            return None;
        }
        let apply = |x: i64| {
            operators
                .iter()
                .zip(&constants)
                .fold(x, |v, (op, &k)| match op {
                    Operator::Add => v + k,
                    Operator::Sub => v - k,
                    _ => v * k,
                })
        };
        // Distinct inputs, the first `shown` of them in the prompt.
        let mut inputs: Vec<i64> = Vec::new();
        while inputs.len() < self.shown + 2 {
            let x = rng.range(0, 20) as i64;
            if !inputs.contains(&x) {
                inputs.push(x);
            }
        }
        let examples: String = inputs[..self.shown]
            .iter()
            .map(|&x| format!("# f({x}) == {}\n", apply(x)))
            .collect();
        let test: String = inputs
            .iter()
            .map(|&x| format!("    assert candidate({x}) == {}\n", apply(x)))
            .collect();
        let templates = if split == Split::OodTemplate {
            &self.held_out_templates
        } else {
            &self.templates
        };
        let template = rng.pick(templates);
        Some(
            Row::from_prompt(template.replace("{examples}", &examples))
                .with("test", format!("def check(candidate):\n{test}"))
                .with("entry_point", "f")
                .with("solution", expression)
                .with("operators", operator_string(&operators))
                .with("template", template.as_str())
                .with("task", "functions"),
        )
    }
}

impl Task for FunctionTask {
    fn name(&self) -> &'static str {
        "functions"
    }

    fn generate(&self, split: Split, n: usize, seed: u64) -> Result<Vec<Row>> {
        self.validate()?;
        draw_distinct(self.name(), split, n, seed, |rng| self.draw(split, rng))
    }
}
