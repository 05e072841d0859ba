//! `grpo data …`: make procedural task rows, deduplicate JSONL datasets, and filter them by
//! how often a model solves each prompt.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use grpo::policy::ChatTemplate;
use grpo::recipe::TaskConfig;
use grpo::trainer::{EvalSettings, check_pass_band, pass_rates};
use grpo::verifiers::VerifierSet;
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
    /// Keep the prompts a model solves sometimes but not always: each row's pass rate over
    /// `-k` sampled completions, scored by the verifiers, must lie in [--min-pass, --max-pass].
    /// A prompt solved always or never gives GRPO a group of equal rewards, so no gradient.
    Filter(FilterArgs),
}

#[derive(clap::Args)]
pub struct FilterArgs {
    /// JSONL rows with a `prompt` (`.gz` is read too); a conversational prompt (a list of
    /// messages) is rendered with the model's chat template.
    input: PathBuf,
    /// Where the kept rows go, as they were read (conversations stay conversations), in
    /// their original order, each with its `pass_rate` (written atomically).
    output: PathBuf,
    /// The model that attempts the prompts: a Hugging Face directory or one of our checkpoints.
    #[arg(long)]
    model: PathBuf,
    /// The verifiers that judge each completion (a `V.toml`); a completion passes when they
    /// judge it correct.
    #[arg(long)]
    verifiers: PathBuf,
    /// Completions sampled per prompt.
    #[arg(short, default_value_t = 8)]
    k: usize,
    /// The lowest pass rate kept (the default drops prompts never solved).
    #[arg(long, default_value_t = 0.01)]
    min_pass: f64,
    /// The highest pass rate kept (the default drops prompts always solved).
    #[arg(long, default_value_t = 0.99)]
    max_pass: f64,
    #[arg(long, default_value_t = 64)]
    max_new_tokens: usize,
    #[arg(long, default_value_t = 1.0)]
    temperature: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also write the dropped rows here, each with its `pass_rate`.
    #[arg(long)]
    removed: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    device: grpo::device::Backend,
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
    /// The field compared (a conversation is compared by its messages' contents).
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
        DataCommand::Filter(args) => filter(args),
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
        let Some(text) = located.row.get(&args.field).and_then(compared_text) else {
            bail!(
                "{}:{}: field `{}` is missing, or neither a string nor a conversation",
                args.input.display(),
                located.line,
                args.field
            );
        };
        lines.push(located.line);
        let (of, similarity) = match dedup.check(&text) {
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

/// The text a row is compared by: the field's string, or a conversation's message contents one
/// per line (so a conversation asking what a plain prompt asks is its duplicate).
fn compared_text(value: &Value) -> Option<std::borrow::Cow<'_, str>> {
    match value {
        Value::String(text) => Some(text.as_str().into()),
        Value::Array(messages) => Some(
            messages
                .iter()
                .filter_map(|m| m.get("content")?.as_str())
                .collect::<Vec<_>>()
                .join("\n")
                .into(),
        ),
        _ => None,
    }
}

fn filter(args: &FilterArgs) -> Result<()> {
    if let Err(why) = check_pass_band(args.min_pass, args.max_pass) {
        bail!("--min-pass, --max-pass: {why}");
    }
    if args.k == 0 {
        bail!("-k must be at least 1");
    }
    let verifiers = VerifierSet::from_toml_file(&args.verifiers)?;
    let template = ChatTemplate::from_dir(&args.model)?;
    let mut reader = JsonlReader::open(&args.input, OnMalformed::Fail)?;
    // The rows as read (what is written back) and as the model is prompted with them.
    let (mut rows, mut prompted) = (Vec::new(), Vec::new());
    while let Some(located) = reader.next_located() {
        let located = located?;
        let at = || format!("{}:{}: field `prompt`", args.input.display(), located.line);
        prompted.push(match located.row.conversation() {
            None => located.row.clone(),
            Some(messages) => {
                let Some(template) = &template else {
                    bail!(
                        "{}: a conversation, and {} has no `chat_template` to render it with",
                        at(),
                        args.model.display()
                    );
                };
                let text = template
                    .render(messages, true)
                    .with_context(|| format!("{}: rendering the conversation", at()))?;
                located.row.clone().with("prompt", text)
            }
        });
        rows.push(located.row);
    }
    let device = args.device.device()?;
    let (model, tokenizer) = grpo::recipe::load_model(&args.model, &device)?;
    let settings = EvalSettings {
        max_completion_length: args.max_new_tokens,
        stop_strings: Vec::new(),
        num_samples: args.k,
        k: 1,
        temperature: args.temperature,
        seed: args.seed,
        environment_reward_weight: 1.0,
    };
    let progress = ProgressBar::new(rows.len() as u64).with_style(
        ProgressStyle::with_template(
            "filter {bar:30} {human_pos}/{human_len} rows ({per_sec}, {eta})",
        )
        .expect("valid template"),
    );
    let rates = pass_rates(
        &model,
        tokenizer.as_ref(),
        &verifiers,
        None,
        &prompted,
        &settings,
        &mut |done| progress.inc(done as u64),
    )?
    .rates;
    progress.finish_and_clear();
    let mut kept = AtomicFile::create(&args.output)?;
    let mut removed = args.removed.as_ref().map(AtomicFile::create).transpose()?;
    let (mut too_hard, mut too_easy) = (0usize, 0usize);
    for (row, &rate) in rows.into_iter().zip(&rates) {
        let row = row.with("pass_rate", rate);
        let out = if rate < args.min_pass {
            too_hard += 1;
            removed.as_mut()
        } else if rate > args.max_pass {
            too_easy += 1;
            removed.as_mut()
        } else {
            Some(&mut kept)
        };
        if let Some(file) = out {
            write_row(file.writer(), &row)?;
        }
    }
    kept.commit()?;
    if let Some(removed) = removed {
        removed.commit()?;
    }
    let n = rates.len();
    let share = |count: usize| 100.0 * count as f64 / n.max(1) as f64;
    let never = rates.iter().filter(|r| **r == 0.0).count();
    let always = rates.iter().filter(|r| **r == 1.0).count();
    eprintln!(
        "{n} rows: {} kept, {too_hard} below --min-pass, {too_easy} above --max-pass; mean pass \
         rate {:.3}, never solved {:.1}%, always solved {:.1}% (k = {})",
        n - too_hard - too_easy,
        rates.iter().sum::<f64>() / n.max(1) as f64,
        share(never),
        share(always),
        args.k
    );
    Ok(())
}
