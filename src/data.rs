//! `grpo data …`: make procedural task rows and deduplicate JSONL datasets.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use grpo::recipe::TaskConfig;
use grpo_base::AtomicFile;
use grpo_data::tasks::Split;
use grpo_data::{Decision, DedupConfig, Deduplicator, JsonlReader, OnMalformed, write_row};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Deserialize;
use serde_json::Value;

#[derive(clap::Subcommand)]
pub enum DataCommand {
    /// Generate rows of a procedural task (`arithmetic`, `countdown`, `functions`) for one split.
    Make(MakeArgs),
    /// Drop exact (after normalisation) and near (MinHash) duplicates, keeping first occurrences.
    Dedup(DedupArgs),
}

#[derive(clap::Args)]
pub struct MakeArgs {
    /// `arithmetic`, `countdown` or `functions`.
    task: String,
    /// train, test, ood_template, ood_length or ood_composition.
    #[arg(long, default_value = "train")]
    split: String,
    /// How many rows.
    #[arg(short, default_value_t = 1000)]
    n: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The task's settings (TOML with the fields of `ArithmeticTask`, `CountdownTask` or
    /// `FunctionTask`: a run file's `[task.settings]`);
    /// the defaults otherwise.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Write here (atomically) instead of to stdout.
    #[arg(short, long)]
    output: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct DedupArgs {
    /// JSONL rows (`.gz` is read too).
    input: PathBuf,
    /// Where the kept rows go, in their original order (written atomically).
    output: PathBuf,
    /// The field compared.
    #[arg(long, default_value = "prompt")]
    field: String,
    /// Estimated Jaccard similarity of character shingles at which a row is a near duplicate;
    /// 1 keeps near duplicates.
    #[arg(long, default_value_t = 0.8)]
    threshold: f64,
    /// Also write the removed rows here, each with `duplicate_of` (the kept row's line) and
    /// `similarity`.
    #[arg(long)]
    removed: Option<PathBuf>,
    /// Skip (and count) malformed lines instead of stopping at the first.
    #[arg(long)]
    skip_malformed: bool,
}

pub fn run(command: &DataCommand) -> Result<()> {
    match command {
        DataCommand::Make(args) => make(args),
        DataCommand::Dedup(args) => dedup(args),
    }
}

fn make(args: &MakeArgs) -> Result<()> {
    let split: Split = args.split.parse()?;
    let settings = match &args.config {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?,
        ),
        None => None,
    };
    let origin = args
        .config
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let settings: toml::Table = match &settings {
        Some(text) => toml::from_str(text).map_err(|e| {
            let location = grpo::base::toml_location(&origin, text, &e);
            anyhow::anyhow!("{location}: {}", e.message())
        })?,
        None => toml::Table::new(),
    };
    // The recipe's `[task]` section knows the task kinds: build one as a run file would.
    let mut section = toml::Table::new();
    section.insert("kind".into(), args.task.clone().into());
    section.insert("settings".into(), settings.into());
    let task = TaskConfig::deserialize(section)
        .map_err(|e| anyhow::anyhow!("task `{}` {origin}: {}", args.task, e.message()))?;
    let Some(generator) = task.generator() else {
        bail!(
            "`{}` reads files; `grpo data make` makes procedural tasks",
            args.task
        )
    };
    let rows = generator.generate(split, args.n, args.seed)?;
    match &args.output {
        Some(path) => grpo_data::write_jsonl(path, &rows)?,
        None => {
            let mut out = BufWriter::new(io::stdout().lock());
            for row in &rows {
                write_row(&mut out, row)?;
            }
            out.flush()?;
        }
    }
    Ok(())
}

fn dedup(args: &DedupArgs) -> Result<()> {
    let on_malformed = if args.skip_malformed {
        OnMalformed::Skip
    } else {
        OnMalformed::Fail
    };
    let mut reader = JsonlReader::open(&args.input, on_malformed)?;
    let mut dedup = Deduplicator::new(DedupConfig {
        field: args.field.clone(),
        threshold: args.threshold,
        ..Default::default()
    })?;
    let mut kept = AtomicFile::create(&args.output)?;
    let mut removed = args.removed.as_ref().map(AtomicFile::create).transpose()?;
    let progress = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("dedup {spinner} {human_pos} rows ({per_sec})")
            .expect("valid template"),
    );
    let started = Instant::now();
    // The line of each row, in check order: what `duplicate_of` names.
    let mut lines = Vec::new();
    while let Some(located) = reader.next_located() {
        let located = located?;
        let text = match located.row.get(&args.field) {
            Some(Value::String(text)) => text,
            _ => bail!(
                "{}:{}: field `{}` is missing or not a string",
                args.input.display(),
                located.line,
                args.field
            ),
        };
        lines.push(located.line);
        let (of, similarity) = match dedup.check(text) {
            Decision::Kept => {
                write_row(kept.writer(), &located.row)?;
                progress.inc(1);
                continue;
            }
            Decision::Exact { of } => (of, 1.0),
            Decision::Near { of, similarity } => (of, similarity),
        };
        if let Some(removed) = removed.as_mut() {
            let row = located
                .row
                .with("duplicate_of", lines[of])
                .with("similarity", similarity);
            write_row(removed.writer(), &row)?;
        }
        progress.inc(1);
    }
    kept.commit()?;
    if let Some(removed) = removed {
        removed.commit()?;
    }
    progress.finish_and_clear();
    let report = dedup.report();
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "{} rows: {} kept, {} exact duplicates, {} near duplicates{} ({:.0} rows/s)",
        report.rows,
        report.kept,
        report.exact_duplicates,
        report.near_duplicates,
        match reader.skipped().len() {
            0 => String::new(),
            n => format!(", {n} malformed lines skipped"),
        },
        report.rows as f64 / seconds.max(1e-9),
    );
    Ok(())
}
