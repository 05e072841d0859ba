//! A whole run from one TOML file — what `grpo train --config RUN.toml` and the examples do:
//! build or load a model, make the task's splits, warm up with SFT, run GRPO, optionally run a
//! compute-matched SFT control arm, evaluate every arm on every split, and write
//! `results.json`, `results.md`, metrics, completions and plots into the run directory.
//!
//! ```toml
//! name = "math_rl"
//! seed = 7
//! [model]                 # from scratch with the byte tokenizer, or `dir = "hf-model/"`
//! hidden_size = 128
//! num_hidden_layers = 2
//! [task]                  # arithmetic | countdown | functions | gsm8k | jsonl
//! kind = "arithmetic"
//! train_rows = 20000
//! eval_rows = 200
//! splits = ["test", "ood_template", "ood_length", "ood_composition"]
//! [task.settings]         # the task's own fields (ArithmeticTask, CountdownTask, …)
//! max_digits = 2
//! [sft]                   # SftConfig: the warm-up
//! max_steps = 500
//! sft_control = true      # (top level) a control arm spending GRPO's compute on more SFT
//! [grpo]                  # GrpoConfig
//! max_steps = 200
//! [[verifiers]]           # as in a V.toml
//! kind = "arithmetic"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use grpo_data::tasks::{ArithmeticTask, CountdownTask, FunctionTask, Split, Task};
use grpo_data::{Dataset, OnMalformed, Row};
use grpo_policy::burn::module::Module;
use grpo_policy::burn::tensor::Device;
use grpo_policy::{ByteTokenizer, CausalLm, HfTokenizer, LmConfig, Tokenizer};
use grpo_trainer::{
    EvalSettings, GrpoConfig, GrpoTrainer, Metrics, SftConfig, SftTrainer, evaluate,
};
use grpo_verifiers::{Registry, VerifierSet};
use serde::{Deserialize, Serialize};

use crate::plot::{Chart, Series, save};

/// A named evaluation split and its rows.
pub type EvalSet = (String, Vec<Row>);

/// The run file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    pub name: String,
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub model: ModelConfig,
    pub task: TaskConfig,
    /// The supervised warm-up (none: GRPO starts from the model as it is).
    pub sft: Option<SftConfig>,
    /// Also train a control arm: the warm-up model trained with SFT for as much compute as GRPO
    /// used.
    #[serde(default)]
    pub sft_control: bool,
    #[serde(default)]
    pub grpo: GrpoConfig,
    /// Read by [`Registry::verifiers_from_section`].
    #[serde(default, rename = "verifiers")]
    _verifiers: Option<toml::Value>,
    #[serde(default, rename = "time_budget_s")]
    _time_budget_s: Option<f64>,
}

/// The model: a Hugging Face or grpo directory, or a Llama-shaped one from scratch with the byte
/// tokenizer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    pub dir: Option<PathBuf>,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            dir: None,
            hidden_size: 128,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            intermediate_size: 384,
        }
    }
}

/// Where the prompts come from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskConfig {
    /// `arithmetic`, `countdown`, `functions` (procedural, with generalization splits),
    /// `gsm8k` (`train_file`/`test_file`, split `test`) or `jsonl` (`train_file`, and
    /// `test_file` for split `test`).
    pub kind: String,
    #[serde(default = "default_train_rows")]
    pub train_rows: usize,
    #[serde(default = "default_eval_rows")]
    pub eval_rows: usize,
    #[serde(default = "default_splits")]
    pub splits: Vec<String>,
    /// The procedural task's own settings.
    #[serde(default)]
    pub settings: Option<toml::Table>,
    pub train_file: Option<PathBuf>,
    pub test_file: Option<PathBuf>,
    /// Put around every prompt (an instruction, a chat template).
    #[serde(default)]
    pub prompt_prefix: String,
    #[serde(default)]
    pub prompt_suffix: String,
}

fn default_train_rows() -> usize {
    10_000
}
fn default_eval_rows() -> usize {
    200
}
fn default_splits() -> Vec<String> {
    vec!["test".into()]
}

/// Accuracy (greedy pass@1) per split for each arm, and timings.
#[derive(Debug, Clone, Serialize)]
pub struct Results {
    pub arms: BTreeMap<String, BTreeMap<String, f64>>,
    pub wall_s: f64,
    pub phases_s: BTreeMap<String, f64>,
}

impl Results {
    /// The arms side by side, one row per split.
    pub fn markdown(&self) -> String {
        let arms: Vec<&String> = ["warmup", "grpo", "sft_control"]
            .iter()
            .filter_map(|a| self.arms.get_key_value(*a).map(|(k, _)| k))
            .collect();
        let splits: Vec<&String> = self
            .arms
            .values()
            .next()
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        let mut out = format!(
            "| split | {} |\n|---|{}\n",
            arms.iter()
                .map(|a| a.as_str())
                .collect::<Vec<_>>()
                .join(" | "),
            "---|".repeat(arms.len())
        );
        for split in splits {
            let cells: Vec<String> = arms
                .iter()
                .map(|a| format!("{:.1}%", 100.0 * self.arms[*a][split]))
                .collect();
            out.push_str(&format!("| {split} | {} |\n", cells.join(" | ")));
        }
        out
    }
}

/// Loads a model directory with its tokenizer: `tokenizer.json` when there is one, else bytes.
pub fn load_model(dir: &Path, device: &Device) -> Result<(CausalLm, Arc<dyn Tokenizer>)> {
    let model =
        CausalLm::load(dir, device).with_context(|| format!("cannot load {}", dir.display()))?;
    if dir.join("tokenizer.json").exists() {
        return Ok((model, Arc::new(HfTokenizer::from_dir(dir)?)));
    }
    anyhow::ensure!(
        model.config().vocab_size >= ByteTokenizer::VOCAB_SIZE,
        "{} has no tokenizer.json and its vocabulary ({}) is too small for the byte tokenizer",
        dir.display(),
        model.config().vocab_size
    );
    Ok((model, Arc::new(ByteTokenizer)))
}

/// A parsed run: the config, its verifiers, and where it came from.
pub struct Run {
    pub config: RunConfig,
    pub verifiers: VerifierSet,
    text: String,
}

impl Run {
    /// Reads a run config whose `[[verifiers]]` use the built-in kinds.
    pub fn from_file(path: &Path) -> Result<Run> {
        Run::from_file_with(path, &Registry::default())
    }

    /// Reads a run config whose `[[verifiers]]` may use the kinds of `registry` (yours
    /// registered beside the built-ins).
    pub fn from_file_with(path: &Path, registry: &Registry) -> Result<Run> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Run::from_str_with(&text, &path.display().to_string(), registry)
    }

    /// Parses a run config (built-in verifier kinds); errors name `origin`, the line and the key.
    pub fn from_str(text: &str, origin: &str) -> Result<Run> {
        Run::from_str_with(text, origin, &Registry::default())
    }

    /// Parses a run config whose verifiers may use the kinds of `registry`.
    pub fn from_str_with(text: &str, origin: &str, registry: &Registry) -> Result<Run> {
        let config: RunConfig = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| text[..s.start].matches('\n').count() + 1);
            anyhow::anyhow!(
                "{origin}{}: {}",
                line.map(|l| format!(":{l}")).unwrap_or_default(),
                e.message()
            )
        })?;
        config
            .grpo
            .validate()
            .with_context(|| format!("{origin}: [grpo]"))?;
        if let Some(sft) = &config.sft {
            sft.validate().with_context(|| format!("{origin}: [sft]"))?;
        }
        let verifiers = registry.verifiers_from_section(text, origin)?;
        Ok(Run {
            config,
            verifiers,
            text: text.to_owned(),
        })
    }

    /// The training rows and the evaluation sets, by split name.
    pub fn data(&self) -> Result<(Vec<Row>, Vec<EvalSet>)> {
        let task = &self.config.task;
        let wrap = |rows: Vec<Row>| -> Vec<Row> {
            rows.into_iter()
                .map(|r| {
                    let prompt =
                        format!("{}{}{}", task.prompt_prefix, r.prompt(), task.prompt_suffix);
                    r.with("prompt", prompt)
                })
                .collect()
        };
        let seed = self.config.seed;
        let procedural: Option<Box<dyn Task>> = match task.kind.as_str() {
            "arithmetic" => Some(Box::new(settings::<ArithmeticTask>(&task.settings)?)),
            "countdown" => Some(Box::new(settings::<CountdownTask>(&task.settings)?)),
            "functions" => Some(Box::new(settings::<FunctionTask>(&task.settings)?)),
            _ => None,
        };
        if let Some(generator) = procedural {
            let train = generator.generate(Split::Train, task.train_rows, seed)?;
            let mut sets = Vec::new();
            for name in &task.splits {
                let split: Split = name.parse()?;
                anyhow::ensure!(
                    split != Split::Train,
                    "task.splits: `train` is what is trained on; evaluate held-out splits"
                );
                sets.push((
                    name.clone(),
                    wrap(generator.generate(split, task.eval_rows, seed.wrapping_add(1))?),
                ));
            }
            return Ok((wrap(train), sets));
        }
        let read = |path: &Option<PathBuf>, what: &str| -> Result<Vec<Row>> {
            let path = path
                .as_ref()
                .with_context(|| format!("task.kind = \"{}\" needs task.{what}", task.kind))?;
            Ok(match task.kind.as_str() {
                "gsm8k" => grpo_data::read_gsm8k(path, OnMalformed::Fail)?,
                "jsonl" => grpo_data::read_jsonl(path, OnMalformed::Fail)?,
                other => bail!(
                    "task.kind: unknown `{other}` (arithmetic, countdown, functions, gsm8k, jsonl)"
                ),
            })
        };
        let mut train = read(&task.train_file, "train_file")?;
        train.truncate(task.train_rows);
        let mut sets = Vec::new();
        if task.test_file.is_some() {
            let mut test = read(&task.test_file, "test_file")?;
            test.truncate(task.eval_rows);
            sets.push(("test".to_owned(), wrap(test)));
        }
        Ok((wrap(train), sets))
    }

    /// The model to start from and its tokenizer.
    pub fn model(&self, device: &Device) -> Result<(CausalLm, Arc<dyn Tokenizer>)> {
        let m = &self.config.model;
        if let Some(dir) = &m.dir {
            return load_model(dir, device);
        }
        device.seed(self.config.seed);
        let config = LmConfig::small(
            ByteTokenizer::VOCAB_SIZE,
            m.hidden_size,
            m.num_hidden_layers,
            m.num_attention_heads,
            m.intermediate_size,
        );
        Ok((CausalLm::new(&config, device)?, Arc::new(ByteTokenizer)))
    }

    fn eval_settings(&self) -> EvalSettings {
        let g = &self.config.grpo;
        EvalSettings {
            max_completion_length: g.max_completion_length,
            stop_strings: g.stop_strings.clone(),
            num_samples: 0,
            k: 1,
            temperature: g.temperature,
            seed: self.config.seed,
        }
    }

    /// Greedy pass@1 of `model` on every set.
    pub fn evaluate(
        &self,
        model: &CausalLm,
        tokenizer: &dyn Tokenizer,
        sets: &[EvalSet],
    ) -> Result<BTreeMap<String, f64>> {
        let settings = self.eval_settings();
        let mut out = BTreeMap::new();
        for (name, rows) in sets {
            out.insert(
                name.clone(),
                evaluate(model, tokenizer, &self.verifiers, rows, &settings)?.pass_at_1,
            );
        }
        Ok(out)
    }

    /// Runs everything into `out` (with `resume`, the GRPO phase continues from its newest
    /// checkpoint and the warm-up is not redone).
    pub fn execute(&self, out: &Path, device: &Device, resume: bool) -> Result<Results> {
        let started = Instant::now();
        std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
        write_atomic(&out.join("run.toml"), self.text.as_bytes())?;
        let (train, sets) = self.data()?;
        let (model, tokenizer) = self.model(device)?;
        let mut phases = BTreeMap::new();
        let mut arms = BTreeMap::new();
        let warm_dir = out.join("warmup_model");

        // 1. Warm-up.
        let t = Instant::now();
        let warm = if resume && warm_dir.join("model.bpk").exists() {
            eprintln!("resuming: the warm-up model is {}", warm_dir.display());
            CausalLm::load(&warm_dir, device)?
        } else if let Some(sft) = &self.config.sft {
            eprintln!(
                "warm-up: {} SFT steps on {} rows",
                sft.max_steps,
                train.len()
            );
            let mut trainer = SftTrainer::new(
                model,
                tokenizer.clone(),
                Dataset::from_rows(train.clone()),
                sft.clone(),
                Some(out.join("sft")),
            )?;
            trainer.train()?;
            let warm = trainer.into_model();
            warm.save(&warm_dir)?;
            warm
        } else {
            model
        };
        phases.insert("warmup".to_owned(), t.elapsed().as_secs_f64());
        let mut eval_s = 0.0;
        let t = Instant::now();
        arms.insert(
            "warmup".to_owned(),
            self.evaluate(&warm, tokenizer.as_ref(), &sets)?,
        );
        eval_s += t.elapsed().as_secs_f64();
        eprintln!("warm-up: {}", summary(&arms["warmup"]));

        // 2. GRPO.
        let t_grpo = Instant::now();
        let grpo_dir = out.join("grpo");
        let mut trainer = if resume && grpo_trainer::latest_checkpoint(&grpo_dir)?.is_some() {
            GrpoTrainer::resume(
                grpo_dir.clone(),
                tokenizer.clone(),
                self.verifiers.clone(),
                Dataset::from_rows(train.clone()),
                device,
            )?
        } else {
            GrpoTrainer::new(
                warm.clone(),
                tokenizer.clone(),
                self.verifiers.clone(),
                Dataset::from_rows(train.clone()),
                self.config.grpo.clone(),
                Some(grpo_dir.clone()),
            )?
        };
        for (name, rows) in &sets {
            trainer = trainer.with_eval_set(name.clone(), rows.clone());
        }
        trainer.train()?;
        let grpo_model = trainer.model().valid();
        phases.insert("grpo".to_owned(), t_grpo.elapsed().as_secs_f64());
        let t = Instant::now();
        arms.insert(
            "grpo".to_owned(),
            self.evaluate(&grpo_model, tokenizer.as_ref(), &sets)?,
        );
        eval_s += t.elapsed().as_secs_f64();
        eprintln!("grpo: {}", summary(&arms["grpo"]));
        let metrics = read_metrics(&grpo_dir.join("metrics.jsonl"))?;

        // 3. The control arm: as much compute, spent on SFT.
        if self.config.sft_control {
            let sft = self.config.sft.clone().unwrap_or_default();
            let steps = self.matched_sft_steps(&metrics, &train, &sft, tokenizer.as_ref());
            eprintln!("control: {steps} more SFT steps (the GRPO phase's compute)");
            let t = Instant::now();
            let mut control = SftTrainer::new(
                warm.clone(),
                tokenizer.clone(),
                Dataset::from_rows(train.clone()),
                SftConfig {
                    max_steps: steps.max(1),
                    seed: sft.seed.wrapping_add(1),
                    ..sft
                },
                Some(out.join("sft_control")),
            )?;
            control.train()?;
            let control = control.into_model();
            phases.insert("sft_control".to_owned(), t.elapsed().as_secs_f64());
            let t = Instant::now();
            arms.insert(
                "sft_control".to_owned(),
                self.evaluate(&control, tokenizer.as_ref(), &sets)?,
            );
            eval_s += t.elapsed().as_secs_f64();
            eprintln!("sft control: {}", summary(&arms["sft_control"]));
        }
        phases.insert("evaluation".to_owned(), eval_s);
        let results = Results {
            arms,
            wall_s: started.elapsed().as_secs_f64(),
            phases_s: phases,
        };
        write_atomic(
            &out.join("results.json"),
            serde_json::to_string_pretty(&results)?.as_bytes(),
        )?;
        write_atomic(&out.join("results.md"), results.markdown().as_bytes())?;
        plot_run(&metrics, &results.arms["warmup"], out)?;
        Ok(results)
    }

    /// SFT steps costing what the GRPO phase cost, in the token passes the GRPO trainer
    /// counted ([`grpo_trainer::compute`]); an SFT step's tokens are estimated from the
    /// training rows (mean prompt + target tokens of the first 1000, times the batch size).
    fn matched_sft_steps(
        &self,
        metrics: &[Metrics],
        train: &[Row],
        sft: &SftConfig,
        tokenizer: &dyn Tokenizer,
    ) -> usize {
        let sample = &train[..train.len().min(1000)];
        let row_tokens = sample
            .iter()
            .map(|r| {
                // What the SFT trainer encodes: the prompt, the target, its EOS.
                let target = sft.target(r).map_or(0, |t| tokenizer.encode(&t).len());
                tokenizer.encode(r.prompt()).len() + target + usize::from(sft.append_eos)
            })
            .sum::<usize>() as f64
            / sample.len().max(1) as f64;
        grpo_trainer::compute::matched_sft_steps(metrics, sft.batch_size as f64 * row_tokens)
    }
}

fn settings<T: serde::de::DeserializeOwned + Default>(table: &Option<toml::Table>) -> Result<T> {
    match table {
        None => Ok(T::default()),
        Some(table) => Ok(T::deserialize(table.clone())
            .map_err(|e| anyhow::anyhow!("task.settings: {}", e.message()))?),
    }
}

fn summary(accuracy: &BTreeMap<String, f64>) -> String {
    accuracy
        .iter()
        .map(|(k, v)| format!("{k} {:.1}%", 100.0 * v))
        .collect::<Vec<_>>()
        .join(", ")
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = grpo_data::AtomicFile::create(path)?;
    std::io::Write::write_all(file.writer(), bytes)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.commit()?;
    Ok(())
}

/// The metrics lines of a JSONL file.
pub fn read_metrics(path: &Path) -> Result<Vec<Metrics>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(l)
                .with_context(|| format!("{}:{}: not a JSON object", path.display(), i + 1))?;
            Ok(object
                .into_iter()
                .filter_map(|(k, v)| v.as_f64().map(|v| (k, v)))
                .collect())
        })
        .collect()
}

/// `reward.png` (reward per GRPO step) and `accuracy.png` (greedy accuracy per split at each
/// evaluation, from the warm-up model at step 0).
fn plot_run(metrics: &[Metrics], warmup: &BTreeMap<String, f64>, out: &Path) -> Result<()> {
    let series = |key: &str, name: &str| Series {
        name: name.to_owned(),
        points: metrics
            .iter()
            .filter_map(|m| Some((m.get("step").copied()?, m.get(key).copied()?)))
            .collect(),
    };
    save(
        &Chart {
            title: "GRPO reward".into(),
            x_label: "step".into(),
            y_label: "mean reward".into(),
            series: vec![
                series("reward", "reward"),
                series("accuracy", "train accuracy"),
            ],
        },
        &out.join("reward.png"),
    )?;
    let splits = warmup
        .iter()
        .map(|(name, &start)| {
            let mut line = series(&format!("eval/{name}/pass@1"), name);
            line.points.insert(0, (0.0, start));
            line
        })
        .collect();
    save(
        &Chart {
            title: "greedy accuracy per split".into(),
            x_label: "step".into(),
            y_label: "pass@1".into(),
            series: splits,
        },
        &out.join("accuracy.png"),
    )?;
    save(
        &Chart {
            title: "KL to the reference".into(),
            x_label: "step".into(),
            y_label: "KL per token (0 when beta = 0)".into(),
            series: vec![series("kl", "kl")],
        },
        &out.join("kl.png"),
    )?;
    save(
        &Chart {
            title: "completion length".into(),
            x_label: "step".into(),
            y_label: "tokens".into(),
            series: vec![
                series("completions/mean_length", "mean"),
                series("completions/max_length", "max"),
                series(
                    "completions/mean_terminated_length",
                    "mean of those that stopped",
                ),
            ],
        },
        &out.join("completion_length.png"),
    )?;
    Ok(())
}

/// Command-line options every example shares.
#[derive(clap::Parser)]
pub struct ExampleArgs {
    /// The run directory (default: `runs/<name>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    pub device: crate::device::Backend,
    /// Continue the GRPO phase from the run directory's newest checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Start from this model directory instead of the config's model.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Override `grpo.max_steps` (a quick look, or a plumbing check).
    #[arg(long)]
    pub grpo_steps: Option<usize>,
}

/// What an example's `main` does: parse [`ExampleArgs`], run the recipe `text`, print the
/// results table.
pub fn example_main(text: &str, origin: &str) -> Result<Results> {
    use clap::Parser;
    let args = ExampleArgs::parse();
    let mut run = Run::from_str(text, origin)?;
    if let Some(dir) = args.model {
        run.config.model.dir = Some(dir);
    }
    if let Some(steps) = args.grpo_steps {
        run.config.grpo.max_steps = steps;
    }
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from("runs").join(&run.config.name));
    let results = run.execute(&out, &args.device.device()?, args.resume)?;
    println!(
        "\nGreedy accuracy (pass@1) per split, {:.0} s in all:\n",
        results.wall_s
    );
    println!("{}", results.markdown());
    println!(
        "phases (s): {}",
        results
            .phases_s
            .iter()
            .map(|(k, v)| format!("{k} {v:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("written to {}", out.display());
    Ok(results)
}
