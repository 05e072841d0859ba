//! Countdown (TinyZero): reach a target from a handful of numbers with `+ - * /`, each number
//! used exactly once. Every instance is made by building a solution first, so every one is
//! solvable, and the solution is kept in the row.

use serde::{Deserialize, Serialize};

use super::{
    Operator, Split, Task, check_fraction, check_pairs, check_templates, draw_distinct, holds_pair,
    on_side, operator_string,
};
use crate::error::{DataError, Result};
use crate::row::Row;
use grpo_base::SplitMix64;

const OPERATORS: [Operator; 4] = [Operator::Add, Operator::Sub, Operator::Mul, Operator::Div];

/// Settings of the countdown task. Rows carry `prompt`, `numbers` (in the order shown),
/// `target`, `solution` (an expression using each number once), `steps` (the operations that
/// build it, in order: `9+5=14,14*2=28`), `operators` (those of the solution), `template` and
/// `split`: what the expression verifier with
/// `numbers_field = "numbers"` and `answer_field = "target"` reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CountdownTask {
    /// Numbers per instance in training, `min_numbers..=max_numbers`.
    pub min_numbers: usize,
    pub max_numbers: usize,
    /// `ood_length` instances have this many numbers (more than `max_numbers`).
    pub ood_numbers: usize,
    /// Numbers are drawn from `1..=largest_number`.
    pub largest_number: u64,
    /// Targets are in `1..=largest_target`.
    pub largest_target: u64,
    /// Operator pairs never used together in training. `ood_composition` holds the instances
    /// that *cannot* be solved without using both operators of a pair (searched exhaustively,
    /// with every intermediate a positive integer); every other split's kept solution avoids
    /// the pairs.
    pub held_out_pairs: Vec<[Operator; 2]>,
    /// Instruction templates of training, with `{numbers}` (`[3, 7, 25]`) and `{target}`.
    pub templates: Vec<String>,
    /// Templates only `ood_template` uses.
    pub held_out_templates: Vec<String>,
    /// Share of instances on the test side of the train/test partition.
    pub test_fraction: f64,
}

impl Default for CountdownTask {
    fn default() -> Self {
        let strings = |list: &[&str]| list.iter().map(|s| s.to_string()).collect();
        CountdownTask {
            min_numbers: 3,
            max_numbers: 4,
            ood_numbers: 5,
            largest_number: 99,
            largest_target: 100,
            held_out_pairs: vec![[Operator::Mul, Operator::Div]],
            templates: strings(&[
                "Using the numbers {numbers}, create an equation that equals {target}.",
                "Make {target} from {numbers}, using each number once.",
                "Numbers: {numbers}. Target: {target}.",
                "Reach {target} with {numbers} and + - * /.",
            ]),
            held_out_templates: strings(&[
                "Combine {numbers} with arithmetic to get {target}.",
                "Target {target}; numbers {numbers}. Write the equation.",
            ]),
            test_fraction: 0.1,
        }
    }
}

/// A partial solution: its value, its expression, the operators in it, and the operations
/// that built it in order (`9+5=14`).
struct Part {
    value: u64,
    text: String,
    operators: Vec<Operator>,
    steps: Vec<String>,
}

impl CountdownTask {
    pub fn validate(&self) -> Result<()> {
        if self.min_numbers < 2 || self.min_numbers > self.max_numbers {
            return Err(DataError::config(
                "min_numbers",
                format!(
                    "need 2 <= min_numbers <= max_numbers, got {} and {}",
                    self.min_numbers, self.max_numbers
                ),
            ));
        }
        // `ood_composition` searches every solution of an instance: cheap up to 5 numbers.
        if self.max_numbers > 5 {
            return Err(DataError::config(
                "max_numbers",
                format!("must be at most 5, got {}", self.max_numbers),
            ));
        }
        if self.ood_numbers <= self.max_numbers || self.ood_numbers > 8 {
            return Err(DataError::config(
                "ood_numbers",
                format!(
                    "must be more than max_numbers ({}) and at most 8, got {}",
                    self.max_numbers, self.ood_numbers
                ),
            ));
        }
        if !(2..=100_000).contains(&self.largest_number) {
            return Err(DataError::config(
                "largest_number",
                format!("must be in 2..=100000, got {}", self.largest_number),
            ));
        }
        if self.largest_target == 0 {
            return Err(DataError::config("largest_target", "must be at least 1"));
        }
        check_pairs(&self.held_out_pairs, &OPERATORS)?;
        check_templates(
            &self.templates,
            &self.held_out_templates,
            &["{numbers}", "{target}"],
        )?;
        if let Some(bad) = self
            .templates
            .iter()
            .chain(&self.held_out_templates)
            .find(|t| !(t.contains("{numbers}") && t.contains("{target}")))
        {
            return Err(DataError::config(
                "templates",
                format!("`{bad}` must show both {{numbers}} and {{target}}"),
            ));
        }
        check_fraction(self.test_fraction)
    }

    fn draw(&self, split: Split, rng: &mut SplitMix64) -> Option<Row> {
        let count = if split == Split::OodLength {
            self.ood_numbers
        } else {
            rng.range(self.min_numbers as u64, self.max_numbers as u64) as usize
        };
        let numbers: Vec<u64> = (0..count)
            .map(|_| rng.range(1, self.largest_number))
            .collect();
        let solution = solve_forward(&numbers, rng)?;
        if solution.value == 0 || solution.value > self.largest_target {
            return None;
        }
        let holds = holds_pair(&solution.operators, &self.held_out_pairs);
        if split == Split::OodComposition {
            if !holds || self.solvable_without_pairs(&numbers, solution.value) {
                return None;
            }
        } else if holds {
            return None;
        }
        let mut sorted = numbers.clone();
        sorted.sort_unstable();
        let key = format!("{sorted:?}={}", solution.value);
        if !on_side(split, &key, self.test_fraction) {
            return None;
        }
        let templates = if split == Split::OodTemplate {
            &self.held_out_templates
        } else {
            &self.templates
        };
        let template = rng.pick(templates);
        let shown = format!(
            "[{}]",
            numbers
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
        let prompt = template
            .replace("{numbers}", &shown)
            .replace("{target}", &solution.value.to_string());
        Some(
            Row::from_prompt(prompt)
                .with("numbers", numbers)
                .with("target", solution.value)
                .with("solution", solution.text)
                .with("steps", solution.steps.join(","))
                .with("operators", operator_string(&solution.operators))
                .with("template", template.as_str())
                .with("task", "countdown"),
        )
    }
}

impl CountdownTask {
    /// Whether some solution reaches `target` without using both operators of any held-out
    /// pair.
    fn solvable_without_pairs(&self, numbers: &[u64], target: u64) -> bool {
        let masks: Vec<u8> = self
            .held_out_pairs
            .iter()
            .map(|[a, b]| bit(*a) | bit(*b))
            .collect();
        let parts: Vec<(u64, u8)> = numbers.iter().map(|&n| (n, 0)).collect();
        search(&parts, target, &masks)
    }
}

fn bit(op: Operator) -> u8 {
    1 << op as u8
}

/// Depth-first over every way to combine two parts (value, operators used) into one, under the
/// generator's rules; a branch is dropped as soon as it uses a held-out pair.
fn search(parts: &[(u64, u8)], target: u64, pair_masks: &[u8]) -> bool {
    if parts.len() == 1 {
        return parts[0].0 == target;
    }
    for i in 0..parts.len() {
        for j in 0..parts.len() {
            if i == j {
                continue;
            }
            let ((a, used_a), (b, used_b)) = (parts[i], parts[j]);
            let rest = parts
                .iter()
                .enumerate()
                .filter(|&(k, _)| k != i && k != j)
                .map(|(_, &p)| p);
            for op in OPERATORS {
                // + and * are commutative: one order is enough.
                if matches!(op, Operator::Add | Operator::Mul) && i > j {
                    continue;
                }
                let value = match op {
                    Operator::Add => a.checked_add(b),
                    Operator::Sub => (a > b).then(|| a - b),
                    Operator::Mul => a.checked_mul(b),
                    Operator::Div => (b != 0 && a.is_multiple_of(b)).then(|| a / b),
                };
                let used = used_a | used_b | bit(op);
                let Some(value) = value else { continue };
                if pair_masks.iter().any(|m| m & !used == 0) {
                    continue;
                }
                let next: Vec<(u64, u8)> = rest.clone().chain([(value, used)]).collect();
                if search(&next, target, pair_masks) {
                    return true;
                }
            }
        }
    }
    false
}

impl Task for CountdownTask {
    fn name(&self) -> &'static str {
        "countdown"
    }

    fn generate(&self, split: Split, n: usize, seed: u64) -> Result<Vec<Row>> {
        self.validate()?;
        draw_distinct(self.name(), split, n, seed, |rng| self.draw(split, rng))
    }
}

/// Combines random pairs of parts with random operators until one part is left. Every
/// intermediate value is a positive integer (TinyZero's rule): `-` only when the result is
/// positive, `/` only when exact. `None` when a product overflows.
fn solve_forward(numbers: &[u64], rng: &mut SplitMix64) -> Option<Part> {
    let mut parts: Vec<Part> = numbers
        .iter()
        .map(|&n| Part {
            value: n,
            text: n.to_string(),
            operators: Vec::new(),
            steps: Vec::new(),
        })
        .collect();
    while parts.len() > 1 {
        let a = parts.swap_remove(rng.below(parts.len() as u64) as usize);
        let b = parts.swap_remove(rng.below(parts.len() as u64) as usize);
        let allowed: Vec<Operator> = OPERATORS
            .into_iter()
            .filter(|op| match op {
                Operator::Sub => a.value > b.value,
                Operator::Div => b.value != 0 && a.value.is_multiple_of(b.value),
                _ => true,
            })
            .collect();
        let op = *rng.pick(&allowed);
        let value = match op {
            Operator::Add => a.value.checked_add(b.value)?,
            Operator::Sub => a.value - b.value,
            Operator::Mul => a.value.checked_mul(b.value)?,
            Operator::Div => a.value / b.value,
        };
        let wrap = |part: &Part| {
            if part.operators.is_empty() {
                part.text.clone()
            } else {
                format!("({})", part.text)
            }
        };
        let mut operators = a.operators.clone();
        operators.extend(&b.operators);
        operators.push(op);
        let mut steps = a.steps.clone();
        steps.extend(b.steps.iter().cloned());
        steps.push(format!("{}{}{}={value}", a.value, op.symbol(), b.value));
        parts.push(Part {
            value,
            text: format!("{}{}{}", wrap(&a), op.symbol(), wrap(&b)),
            operators,
            steps,
        });
    }
    parts.pop()
}
