//! `grpo score --verifiers V.toml INPUT.jsonl`: scores completions, streaming.
//!
//! Input rows are `{"prompt": ..., "completion": ..., <fields>}`; the whole row is what the
//! verifiers see as the sample's fields. For each input line, in order, one JSON object goes
//! to stdout (`Evaluation::to_json`); a malformed line gets an object whose `unscorable`
//! names it, so output line N always answers input line N. A summary goes to stderr.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use grpo_verifiers::{Evaluation, Sample, VerifierSet};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value, json};

#[derive(clap::Args)]
pub struct ScoreArgs {
    /// The verifiers to score with (TOML, `[[verifiers]]` tables).
    #[arg(long)]
    verifiers: PathBuf,
    /// JSONL rows `{"prompt", "completion", ...fields}`; `-` reads stdin.
    input: PathBuf,
}

/// Lines scored together: enough to keep every core busy, small enough to stream.
const CHUNK_LINES: usize = 4096;

/// One input line, parsed or not.
enum Line {
    Row {
        prompt: String,
        completion: String,
        fields: Map<String, Value>,
    },
    Malformed(String),
}

pub fn run(args: &ScoreArgs) -> Result<()> {
    let set = VerifierSet::from_toml_file(&args.verifiers)?;
    let name = args.input.display().to_string();
    let (reader, size): (Box<dyn Read>, Option<u64>) = if name == "-" {
        (Box::new(io::stdin()), None)
    } else {
        let file = File::open(&args.input).with_context(|| format!("cannot open {name}"))?;
        let size = file.metadata().ok().map(|m| m.len());
        (Box::new(file), size)
    };
    let progress = progress_bar(size);
    let mut reader = BufReader::new(progress.wrap_read(reader));
    let mut out = BufWriter::new(io::stdout().lock());
    let mut summary = Summary::new(&set);
    let started = Instant::now();
    let mut line_number = 0usize;
    loop {
        let mut chunk = Vec::with_capacity(CHUNK_LINES);
        while chunk.len() < CHUNK_LINES {
            let mut bytes = Vec::new();
            if reader
                .read_until(b'\n', &mut bytes)
                .with_context(|| format!("cannot read {name}"))?
                == 0
            {
                break;
            }
            line_number += 1;
            chunk.push(parse_line(&bytes));
        }
        if chunk.is_empty() {
            break;
        }
        let first_line = line_number + 1 - chunk.len();
        let samples: Vec<Sample> = chunk
            .iter()
            .filter_map(|line| match line {
                Line::Row {
                    prompt,
                    completion,
                    fields,
                } => Some(Sample::new(prompt, completion, fields)),
                Line::Malformed(_) => None,
            })
            .collect();
        let mut evaluations = set.evaluate_batch(&samples).into_iter();
        for (offset, line) in chunk.iter().enumerate() {
            let object = match line {
                Line::Row { .. } => {
                    let evaluation = evaluations.next().expect("one evaluation per row");
                    summary.add(&evaluation);
                    evaluation.to_json()
                }
                Line::Malformed(reason) => {
                    let reason = format!("{name}:{}: {reason}", first_line + offset);
                    progress.suspend(|| eprintln!("skipped {reason}"));
                    summary.malformed += 1;
                    json!({"reward": null, "correct": null, "unscorable": format!("malformed input line: {reason}"), "verifiers": {}})
                }
            };
            serde_json::to_writer(&mut out, &object)?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    progress.finish_and_clear();
    summary.print(started.elapsed().as_secs_f64());
    Ok(())
}

fn progress_bar(size: Option<u64>) -> ProgressBar {
    match size {
        Some(size) => ProgressBar::new(size).with_style(
            ProgressStyle::with_template("scoring {bar:40} {bytes}/{total_bytes} ({eta} left)")
                .expect("valid template"),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("scoring {spinner} {bytes}").expect("valid template"),
        ),
    }
}

fn parse_line(bytes: &[u8]) -> Line {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Line::Malformed("not UTF-8".into());
    };
    let text = text.trim_end_matches(['\n', '\r']);
    if text.trim().is_empty() {
        return Line::Malformed("empty line".into());
    }
    let mut fields = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(fields)) => fields,
        Ok(other) => {
            return Line::Malformed(format!("expected a JSON object, got {}", kind(&other)));
        }
        Err(e) => return Line::Malformed(format!("invalid JSON: {e}")),
    };
    let completion = match fields.remove("completion") {
        Some(Value::String(completion)) => completion,
        Some(other) => {
            return Line::Malformed(format!(
                "field `completion` must be a string, got {}",
                kind(&other)
            ));
        }
        None => return Line::Malformed("missing field `completion`".into()),
    };
    let prompt = match fields.get("prompt") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(prompt)) => prompt.clone(),
        Some(other) => {
            return Line::Malformed(format!(
                "field `prompt` must be a string, got {}",
                kind(other)
            ));
        }
    };
    Line::Row {
        prompt,
        completion,
        fields,
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Running totals for the stderr summary, overall and per top-level verifier.
struct Summary {
    rows: usize,
    malformed: usize,
    overall: Tally,
    members: Vec<(String, Tally)>,
}

#[derive(Default)]
struct Tally {
    scored: usize,
    reward_sum: f64,
    judged: usize,
    correct: usize,
    unscorable: usize,
}

impl Tally {
    fn add(&mut self, reward: Option<f32>, correct: Option<bool>) {
        match reward {
            Some(reward) => {
                self.scored += 1;
                self.reward_sum += f64::from(reward);
            }
            None => self.unscorable += 1,
        }
        if let Some(correct) = correct {
            self.judged += 1;
            self.correct += usize::from(correct);
        }
    }

    fn describe(&self) -> String {
        let mean = if self.scored == 0 {
            f64::NAN
        } else {
            self.reward_sum / self.scored as f64
        };
        let accuracy = if self.judged == 0 {
            "n/a".to_owned()
        } else {
            format!(
                "{:.4} ({} of {})",
                self.correct as f64 / self.judged as f64,
                self.correct,
                self.judged
            )
        };
        format!(
            "mean reward {mean:.4}, accuracy {accuracy}, unscorable {}",
            self.unscorable
        )
    }
}

impl Summary {
    fn new(set: &VerifierSet) -> Self {
        Summary {
            rows: 0,
            malformed: 0,
            overall: Tally::default(),
            members: set
                .members()
                .map(|(name, _)| (name.to_owned(), Tally::default()))
                .collect(),
        }
    }

    fn add(&mut self, evaluation: &Evaluation) {
        self.rows += 1;
        self.overall
            .add(evaluation.reward.as_ref().ok().copied(), evaluation.correct);
        for ((_, tally), member) in self.members.iter_mut().zip(&evaluation.members) {
            let score = member.outcome.as_ref().ok();
            tally.add(score.map(|s| s.reward), score.and_then(|s| s.correct));
        }
    }

    fn print(&self, seconds: f64) {
        let rate = self.rows as f64 / seconds.max(1e-9);
        eprintln!(
            "scored {} samples in {seconds:.2} s ({rate:.0} samples/s): {}",
            self.rows,
            self.overall.describe()
        );
        for (name, tally) in &self.members {
            eprintln!("  {name}: {}", tally.describe());
        }
        if self.malformed > 0 {
            eprintln!(
                "skipped {} malformed input lines (each named above)",
                self.malformed
            );
        }
    }
}
