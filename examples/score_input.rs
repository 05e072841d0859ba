//! Writes N synthetic scored-completion rows (JSONL) to stdout, for measuring `grpo score`.
//!
//! ```text
//! cargo run --release --example score_input -- 100000 > /tmp/score.jsonl
//! target/release/grpo score --verifiers examples/verifiers/math.toml /tmp/score.jsonl > /dev/null
//! ```
//!
//! The rows mix what a policy really writes: right and wrong answers, R1-formatted or not,
//! boxed, `####`-marked, comma-grouped, fractions, hedges, long rambles and no answer at all.

use std::io::{BufWriter, Write};

/// A small deterministic generator (PCG-style LCG), so the input is the same on every machine.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn main() -> std::io::Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let mut rng = Lcg(2026);
    let mut out = BufWriter::new(std::io::stdout().lock());
    for _ in 0..n {
        let (a, b) = (rng.below(100_000), rng.below(100_000));
        let gold = a + b;
        let said = if rng.below(3) == 0 {
            gold + 1 + rng.below(9)
        } else {
            gold
        };
        let grouped = {
            let s = said.to_string();
            let mut g = String::new();
            for (i, c) in s.chars().enumerate() {
                if i > 0 && (s.len() - i) % 3 == 0 {
                    g.push(',');
                }
                g.push(c);
            }
            g
        };
        let reasoning = "Let me add the numbers step by step. ".repeat(1 + rng.below(8) as usize);
        let completion = match rng.below(7) {
            0 => format!("<think>{reasoning}{a} + {b} = {said}</think>\n<answer>{said}</answer>"),
            1 => format!("{reasoning}So the answer is \\boxed{{{grouped}}}."),
            2 => format!("{reasoning}\n#### {grouped}"),
            3 => format!(
                "<think>{reasoning}</think>\n<answer>\\frac{{{}}}{{2}}</answer>",
                said * 2
            ),
            4 => format!("{reasoning}It is \\boxed{{{said} or {}}}", said + 1),
            5 => format!("{reasoning}Final Answer: **{said}**"),
            _ => reasoning,
        };
        let row = serde_json::json!({
            "prompt": format!("What is {a} + {b}?"),
            "completion": completion,
            "answer": gold.to_string(),
        });
        serde_json::to_writer(&mut out, &row)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}
