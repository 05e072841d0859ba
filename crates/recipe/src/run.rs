//! A whole run: build or load a model, make the task's splits, warm up with SFT, run GRPO,
//! optionally run the compute-matched SFT control arm, evaluate every arm on every split, and
//! write `results.json`, `results.md`, metrics, completions and charts into the run directory.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use grpo_data::{Dataset, Row};
use grpo_environments::Environment;
use grpo_policy::burn::module::Module;
use grpo_policy::burn::tensor::Device;
use grpo_policy::{
    ByteTokenizer, CausalLm, ChatMessage, ChatTemplate, HfTokenizer, LmConfig, Tokenizer,
};
use grpo_trainer::{
    EvalSettings, GrpoTrainer, Metrics, SftConfig, SftTrainer, evaluate, pass_rates, read_metrics,
};
use grpo_verifiers::{Registry, VerifierSet};
use serde::{Deserialize, Serialize};

use crate::chart::run_charts;
use crate::config::{PassRateFilter, RunConfig, parse, without_environment};
use crate::error::{RecipeError, Result};
use crate::overrides::apply_overrides;
use crate::task::{EvalSet, row_at};

/// The arms a run can have, in the order tables show them.
pub(crate) const ARMS: [&str; 5] = [
    "warmup",
    "grpo",
    "sft_control",
    "no_env_warmup",
    "no_env_grpo",
];

/// Accuracy (greedy pass@1) per split for each arm, and timings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    pub arms: BTreeMap<String, BTreeMap<String, f64>>,
    /// With an environment: each arm's mean tool calls per greedy episode, per split.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tool_calls: BTreeMap<String, BTreeMap<String, f64>>,
    /// The problems each split was evaluated on.
    #[serde(default)]
    pub rows: BTreeMap<String, usize>,
    pub wall_s: f64,
    pub phases_s: BTreeMap<String, f64>,
    /// With `[pass_rate_filter]`: what it kept, per GRPO arm (`grpo`, `no_env_grpo`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pass_rate_filter: BTreeMap<String, Filtered>,
}

/// What `[pass_rate_filter]` found among the prompts it estimated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Filtered {
    pub estimated: usize,
    /// Prompts within the band: GRPO's prompts.
    pub kept: usize,
    pub never_solved: usize,
    pub always_solved: usize,
    pub mean_pass_rate: f64,
    /// The estimate's sampling, counted in the control arm's budget.
    pub token_passes: usize,
}

impl Results {
    /// The arms side by side, one row per split; then, with an environment, tool calls per
    /// episode the same way.
    pub fn markdown(&self) -> String {
        let mut out = table(&self.arms, |v| format!("{:.1}%", 100.0 * v));
        if !self.tool_calls.is_empty() {
            out.push_str("\nTool calls per episode (greedy):\n\n");
            out.push_str(&table(&self.tool_calls, |v| format!("{v:.2}")));
        }
        out
    }
}

/// One row per split, one column per arm (in [`ARMS`]' order).
fn table(arms: &BTreeMap<String, BTreeMap<String, f64>>, cell: impl Fn(f64) -> String) -> String {
    let names: Vec<&str> = ARMS.into_iter().filter(|a| arms.contains_key(*a)).collect();
    let splits: Vec<&String> = arms
        .values()
        .next()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    let mut out = format!(
        "| split | {} |\n|---|{}\n",
        names.join(" | "),
        "---|".repeat(names.len())
    );
    for split in splits {
        let cells: Vec<String> = names
            .iter()
            .map(|a| arms[*a].get(split).map_or("–".to_owned(), |v| cell(*v)))
            .collect();
        out.push_str(&format!("| {split} | {} |\n", cells.join(" | ")));
    }
    out
}

/// An arm of a run: where it writes, its warm-up and its environment.
struct Arm<'a> {
    /// Before `warmup` and `grpo` in the arms' names.
    prefix: &'static str,
    dir: &'a Path,
    sft: Option<SftConfig>,
    environment: Option<Arc<dyn Environment>>,
}

/// Loads a model directory with its tokenizer: `tokenizer.json` when there is one, else bytes.
pub fn load_model(dir: &Path, device: &Device) -> Result<(CausalLm, Arc<dyn Tokenizer>)> {
    let model = CausalLm::load(dir, device)?;
    if dir.join("tokenizer.json").exists() {
        return Ok((model, Arc::new(HfTokenizer::from_dir(dir)?)));
    }
    if model.config().vocab_size < ByteTokenizer::VOCAB_SIZE {
        return Err(RecipeError::config(
            dir.display().to_string(),
            format!(
                "no tokenizer.json, and its vocabulary ({}) is too small for the byte tokenizer",
                model.config().vocab_size
            ),
        ));
    }
    Ok((model, Arc::new(ByteTokenizer)))
}

/// A parsed run: the config, its verifiers, and the text it came from (saved beside the
/// results).
pub struct Run {
    pub config: RunConfig,
    pub verifiers: VerifierSet,
    /// `[environment]`, built.
    pub environment: Option<Arc<dyn Environment>>,
    pub(crate) text: String,
}

impl Run {
    /// Reads a run file whose `[[verifiers]]` use the built-in kinds.
    pub fn from_file(path: &Path) -> Result<Run> {
        Run::from_file_with(path, &Registry::default())
    }

    /// Reads a run file whose `[[verifiers]]` may use the kinds of `registry` (yours
    /// registered beside the built-ins).
    pub fn from_file_with(path: &Path, registry: &Registry) -> Result<Run> {
        let text = std::fs::read_to_string(path).map_err(|e| RecipeError::io(path, e))?;
        Run::from_str_with(&text, &path.display().to_string(), registry)
    }

    /// Parses a run file (built-in verifier kinds); errors name `origin`, the line and the key.
    pub fn from_str(text: &str, origin: &str) -> Result<Run> {
        Run::from_str_with(text, origin, &Registry::default())
    }

    /// Reads a run file with `--set KEY=VALUE` overrides applied ([`apply_overrides`]).
    pub fn from_file_with_overrides(path: &Path, overrides: &[String]) -> Result<Run> {
        let text = std::fs::read_to_string(path).map_err(|e| RecipeError::io(path, e))?;
        Run::from_str_with_overrides(&text, &path.display().to_string(), overrides)
    }

    /// Parses a run file with overrides applied; errors name `origin (with --set)` and lines
    /// of the edited text, which the run saves as its `run.toml`.
    pub fn from_str_with_overrides(text: &str, origin: &str, overrides: &[String]) -> Result<Run> {
        if overrides.is_empty() {
            return Run::from_str(text, origin);
        }
        let edited = apply_overrides(text, overrides)?;
        Run::from_str(&edited, &format!("{origin} (with --set)"))
    }

    /// Parses a run file whose verifiers may use the kinds of `registry`.
    pub fn from_str_with(text: &str, origin: &str, registry: &Registry) -> Result<Run> {
        let (config, verifiers, environment) = parse(text, origin, registry)?;
        Ok(Run {
            config,
            verifiers,
            environment,
            text: text.to_owned(),
        })
    }

    /// Spreads both trainers' steps over `devices` (by name, as `[grpo] devices`), whatever
    /// the file says: `grpo train --devices`.
    pub fn set_devices(&mut self, devices: Vec<String>) {
        if let Some(sft) = &mut self.config.sft {
            sft.devices = devices.clone();
        }
        self.config.grpo.devices = devices;
    }

    /// The training rows and the evaluation sets, by split name, with every prompt as text:
    /// conversational rows (`prompt` a list of messages, TRL's format) rendered with the
    /// model's chat template, and text prompts too when `[model] chat_template = true`; the
    /// template's `tools` are `[environment]`'s tools, as transformers lists a `GRPOTrainer`'s.
    pub fn data(&self) -> Result<(Vec<Row>, Vec<EvalSet>)> {
        let rows = self.config.task.rows(self.config.seed)?;
        self.rendered(rows, &self.environment_tools())
    }

    /// `[environment]`'s tools as a chat template lists them (none without one).
    fn environment_tools(&self) -> Vec<serde_json::Value> {
        self.environment
            .as_ref()
            .map(|e| e.tools())
            .unwrap_or_default()
    }

    /// The task's rows as [`Run::data`] gives them, with the template's `tools` set to `tools`
    /// (none for an arm without the environment, which must not be told of tools it cannot
    /// call).
    fn rendered(
        &self,
        (train, sets): (Vec<Row>, Vec<EvalSet>),
        tools: &[serde_json::Value],
    ) -> Result<(Vec<Row>, Vec<EvalSet>)> {
        let model = &self.config.model;
        let conversation = |rows: &[Row]| rows.iter().position(|r| r.conversation().is_some());
        // The first conversational row, named for the error if there is no template.
        let first_conversation = conversation(&train)
            .map(|row| (self.config.task.origin(None), row))
            .or_else(|| {
                sets.iter().find_map(|(name, rows)| {
                    Some((self.config.task.origin(Some(name)), conversation(rows)?))
                })
            });
        if !model.chat_template && first_conversation.is_none() {
            return Ok((train, sets));
        }
        let missing = |why: String| match (&first_conversation, model.chat_template) {
            (Some((origin, row)), false) => RecipeError::config(
                row_at(origin, *row),
                format!(
                    "the prompt is a conversation, which needs the model's chat template: {why}"
                ),
            ),
            _ => RecipeError::config("[model] chat_template", why),
        };
        let dir = model.dir.as_ref().ok_or_else(|| {
            missing("[model] needs `dir`, a model directory with a chat template".into())
        })?;
        let template = ChatTemplate::from_dir(dir)?.ok_or_else(|| {
            missing(format!(
                "{} has no `chat_template` in tokenizer_config.json",
                dir.display()
            ))
        })?;
        let render = |rows: Vec<Row>, origin: String| -> Result<Vec<Row>> {
            rows.into_iter()
                .enumerate()
                .map(|(index, row)| {
                    let rendered = match row.conversation() {
                        Some(messages) => template.render_with_tools(messages, tools, true),
                        None if !model.chat_template => return Ok(row),
                        None => {
                            let mut messages = Vec::new();
                            if let Some(system) = &model.system_prompt {
                                messages.push(ChatMessage::new("system", system));
                            }
                            messages.push(ChatMessage::new("user", row.prompt()));
                            template.render_with_tools(&messages, tools, true)
                        }
                    };
                    let prompt =
                        rendered.map_err(|e| RecipeError::config(row_at(&origin, index), e))?;
                    Ok(row.with("prompt", prompt))
                })
                .collect()
        };
        let sets = sets
            .into_iter()
            .map(|(name, rows)| {
                let origin = self.config.task.origin(Some(&name));
                Ok((name, render(rows, origin)?))
            })
            .collect::<Result<_>>()?;
        Ok((render(train, self.config.task.origin(None))?, sets))
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

    /// The model an arm trains from `start`: `start` itself, or with `[lora]` fresh adapters
    /// on it, their initialisation seeded by (seed, arm) so that a resumed execution, which
    /// skips the warm-up's draws, builds the same ones.
    fn trainable(&self, start: &CausalLm, arm: &str, device: &Device) -> Result<CausalLm> {
        let Some(lora) = &self.config.lora else {
            return Ok(start.clone());
        };
        let key = grpo_base::stable_hash(arm.as_bytes(), 0);
        device.seed(grpo_base::SplitMix64::keyed(self.config.seed, &[key]).next_u64());
        let model = start.clone().with_lora(lora)?;
        Ok(model.with_base_dtype(self.config.model.base_dtype.into())?)
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
            environment_reward_weight: g.environment_reward_weight,
        }
    }

    /// Greedy pass@1 of `model` on every set (through the run's environment, if any).
    pub fn evaluate(
        &self,
        model: &CausalLm,
        tokenizer: &dyn Tokenizer,
        sets: &[EvalSet],
    ) -> Result<BTreeMap<String, f64>> {
        Ok(self
            .score(model, tokenizer, sets, self.environment.as_deref())?
            .0)
    }

    /// Greedy pass@1 per set and, with `environment`, tool calls per episode per set.
    fn score(
        &self,
        model: &CausalLm,
        tokenizer: &dyn Tokenizer,
        sets: &[EvalSet],
        environment: Option<&dyn Environment>,
    ) -> Result<(BTreeMap<String, f64>, BTreeMap<String, f64>)> {
        let settings = self.eval_settings();
        let (mut accuracy, mut tool_calls) = (BTreeMap::new(), BTreeMap::new());
        for (name, rows) in sets {
            let result = evaluate(
                model,
                tokenizer,
                &self.verifiers,
                environment.map(|e| (e, self.config.grpo.max_turns)),
                rows,
                &settings,
            )?;
            accuracy.insert(name.clone(), result.pass_at_1);
            if let Some(calls) = result.tool_calls_per_episode {
                tool_calls.insert(name.clone(), calls);
            }
        }
        Ok((accuracy, tool_calls))
    }

    /// Runs everything into `out` (with `resume`, the GRPO phase continues from its newest
    /// checkpoint and the warm-up is not redone).
    pub fn execute(&self, out: &Path, device: &Device, resume: bool) -> Result<Results> {
        let started = Instant::now();
        std::fs::create_dir_all(out).map_err(|e| RecipeError::io(out, e))?;
        write_atomic(&out.join("run.toml"), self.text.as_bytes())?;
        let rows = self.config.task.rows(self.config.seed)?;
        // The no-environment arm renders the same rows again, listing no tools.
        let unrendered = (self.config.no_environment_control && self.environment.is_some())
            .then(|| rows.clone());
        let (train, sets) = self.rendered(rows, &self.environment_tools())?;
        let mut results = Results {
            arms: BTreeMap::new(),
            tool_calls: BTreeMap::new(),
            rows: sets
                .iter()
                .map(|(name, rows)| (name.clone(), rows.len()))
                .collect(),
            wall_s: 0.0,
            phases_s: BTreeMap::new(),
            pass_rate_filter: BTreeMap::new(),
        };
        let arm = Arm {
            prefix: "",
            dir: out,
            sft: self.config.sft.clone(),
            environment: self.environment.clone(),
        };
        let (warm, metrics, tokenizer) =
            self.train_arm(&arm, &train, &sets, device, resume, &mut results)?;
        let labelled = self.config.task.labelled(&train);

        // The control arm: as much compute, spent on SFT.
        if self.config.sft_control {
            let sft = self.config.sft.clone().unwrap_or_default();
            let mut spent = metrics.clone();
            if let Some(filter) = results.pass_rate_filter.get("grpo") {
                // The filter's sampling is GRPO's spending too, as if one more step.
                spent.push([("compute/token_passes".into(), filter.token_passes as f64)].into());
            }
            let steps = self.matched_sft_steps(&spent, labelled, &sft, tokenizer.as_ref());
            eprintln!("control: {steps} more SFT steps (the GRPO phase's compute)");
            let t = Instant::now();
            let mut control = SftTrainer::new(
                self.trainable(&warm, "sft_control", device)?,
                tokenizer.clone(),
                Dataset::from_rows(labelled.to_vec()),
                SftConfig {
                    max_steps: steps.max(1),
                    seed: sft.seed.wrapping_add(1),
                    learning_rate: self
                        .config
                        .sft_control_learning_rate
                        .unwrap_or(sft.learning_rate),
                    ..sft
                },
                Some(out.join("sft_control")),
            )?;
            if let Some(environment) = &self.environment {
                control = control.with_environment(environment.clone());
            }
            control.train()?;
            let control = control.into_model();
            results
                .phases_s
                .insert("sft_control".to_owned(), t.elapsed().as_secs_f64());
            self.score_arm(
                "sft_control",
                &control,
                &tokenizer,
                &sets,
                arm.environment.as_deref(),
                &mut results,
            )?;
        }

        // The same recipe without the environment.
        if let (Some(rows), Some(environment)) = (unrendered, &self.environment) {
            let sft = self
                .config
                .sft
                .as_ref()
                .map(|sft| without_environment(sft, &environment.turn_stops()))
                .transpose()
                .map_err(|why| RecipeError::config("no_environment_control", why))?;
            let arm = Arm {
                prefix: "no_env_",
                dir: &out.join("no_env"),
                sft,
                environment: None,
            };
            let (train, sets) = self.rendered(rows, &[])?;
            self.train_arm(&arm, &train, &sets, device, resume, &mut results)?;
        }
        results.wall_s = started.elapsed().as_secs_f64();
        let json = serde_json::to_string_pretty(&results).expect("results serialize");
        write_atomic(&out.join("results.json"), json.as_bytes())?;
        write_atomic(&out.join("results.md"), results.markdown().as_bytes())?;
        Ok(results)
    }

    /// One arm's warm-up and GRPO phase in `arm.dir`, each model evaluated into `results`
    /// (as `<prefix>warmup`, `<prefix>grpo`), its charts drawn; the warm-up model, the GRPO
    /// metrics and the tokenizer come back for the control arm.
    fn train_arm(
        &self,
        arm: &Arm,
        train: &[Row],
        sets: &[EvalSet],
        device: &Device,
        resume: bool,
        results: &mut Results,
    ) -> Result<(CausalLm, Vec<Metrics>, Arc<dyn Tokenizer>)> {
        let (model, tokenizer) = self.model(device)?;
        let warm_dir = arm.dir.join("warmup_model");
        let warmup = format!("{}warmup", arm.prefix);
        let t = Instant::now();
        let warm = if resume && warm_dir.join("model.bpk").exists() {
            eprintln!("resuming: the warm-up model is {}", warm_dir.display());
            CausalLm::load(&warm_dir, device)?
        } else if let Some(sft) = &arm.sft {
            let labelled = self.config.task.labelled(train);
            eprintln!(
                "{warmup}: {} SFT steps on {} rows",
                sft.max_steps,
                labelled.len()
            );
            self.warn_of_long_targets(sft, arm, labelled, tokenizer.as_ref())?;
            let mut trainer = SftTrainer::new(
                model,
                tokenizer.clone(),
                Dataset::from_rows(labelled.to_vec()),
                sft.clone(),
                Some(arm.dir.join("sft")),
            )?;
            if let Some(environment) = &arm.environment {
                trainer = trainer.with_environment(environment.clone());
            }
            trainer.train()?;
            let warm = trainer.into_model();
            warm.save(&warm_dir)?;
            warm
        } else {
            model
        };
        results
            .phases_s
            .insert(warmup.clone(), t.elapsed().as_secs_f64());
        let environment = arm.environment.as_deref();
        self.score_arm(&warmup, &warm, &tokenizer, sets, environment, results)?;

        let grpo = format!("{}grpo", arm.prefix);
        let t = Instant::now();
        let filtered;
        let train = match &self.config.pass_rate_filter {
            None => train,
            Some(filter) => {
                let (kept, found) =
                    self.filter_prompts(filter, &warm, tokenizer.as_ref(), train, environment)?;
                eprintln!(
                    "{grpo}: pass-rate filter kept {} of {} prompts (never solved {}, always \
                     solved {}, mean pass rate {:.3})",
                    found.kept,
                    found.estimated,
                    found.never_solved,
                    found.always_solved,
                    found.mean_pass_rate
                );
                results.pass_rate_filter.insert(grpo.clone(), found);
                filtered = kept;
                &filtered[..]
            }
        };
        let grpo_dir = arm.dir.join("grpo");
        let mut trainer = if resume && grpo_trainer::latest_checkpoint(&grpo_dir)?.is_some() {
            GrpoTrainer::resume(
                grpo_dir.clone(),
                tokenizer.clone(),
                self.verifiers.clone(),
                Dataset::from_rows(train.to_vec()),
                device,
            )?
            // The run file's devices, not the checkpoint's: where a run goes on is placement,
            // not its math (a run whose worker died goes on with fewer).
            .with_devices(self.config.grpo.devices.clone())
        } else {
            GrpoTrainer::new(
                self.trainable(&warm, &grpo, device)?,
                tokenizer.clone(),
                self.verifiers.clone(),
                Dataset::from_rows(train.to_vec()),
                self.config.grpo.clone(),
                Some(grpo_dir.clone()),
            )?
        };
        for (name, rows) in sets {
            trainer = trainer.with_eval_set(name.clone(), rows.clone());
        }
        if let Some(environment) = &arm.environment {
            trainer = trainer.with_environment(environment.clone());
        }
        trainer.train()?;
        let grpo_model = trainer.model().valid();
        if grpo_model.lora().is_some() {
            // The adapter alone, as peft saves one: `grpo merge --base <warm-up or model dir>
            // --adapter grpo_adapter -o merged` makes a plain model of it.
            let adapter = arm.dir.join("grpo_adapter");
            grpo_model.save_adapter(&adapter)?;
            eprintln!("{grpo}: adapter in {}", adapter.display());
        }
        results
            .phases_s
            .insert(grpo.clone(), t.elapsed().as_secs_f64());
        self.score_arm(&grpo, &grpo_model, &tokenizer, sets, environment, results)?;
        let metrics = read_metrics(&grpo_dir.join("metrics.jsonl"))?;
        run_charts(
            &metrics,
            &results.arms[&warmup],
            results.tool_calls.get(&warmup),
            arm.dir,
        )?;
        Ok((warm, metrics, tokenizer))
    }

    /// The prompts of `train` that `filter` keeps under `model`, and what it found. Errors when
    /// none is kept: GRPO would have nothing to learn from.
    fn filter_prompts(
        &self,
        filter: &PassRateFilter,
        model: &CausalLm,
        tokenizer: &dyn Tokenizer,
        train: &[Row],
        environment: Option<&dyn Environment>,
    ) -> Result<(Vec<Row>, Filtered)> {
        let pool = &train[..filter.max_prompts.unwrap_or(usize::MAX).min(train.len())];
        let settings = EvalSettings {
            num_samples: filter.k,
            ..self.eval_settings()
        };
        let progress = indicatif::ProgressBar::new(pool.len() as u64).with_style(
            indicatif::ProgressStyle::with_template(
                "pass-rate filter {bar:30} {human_pos}/{human_len} prompts ({eta} left)",
            )
            .expect("valid template"),
        );
        let estimate = pass_rates(
            model,
            tokenizer,
            &self.verifiers,
            environment.map(|e| (e, self.config.grpo.max_turns)),
            pool,
            &settings,
            &mut |done| progress.inc(done as u64),
        )?;
        progress.finish_and_clear();
        let rates = &estimate.rates;
        let kept: Vec<Row> = pool
            .iter()
            .zip(rates)
            .filter(|(_, rate)| (filter.min_pass..=filter.max_pass).contains(*rate))
            .map(|(row, _)| row.clone())
            .collect();
        let found = Filtered {
            estimated: pool.len(),
            kept: kept.len(),
            never_solved: rates.iter().filter(|r| **r == 0.0).count(),
            always_solved: rates.iter().filter(|r| **r == 1.0).count(),
            mean_pass_rate: rates.iter().sum::<f64>() / rates.len().max(1) as f64,
            token_passes: estimate.token_passes,
        };
        if kept.is_empty() {
            return Err(RecipeError::config(
                "[pass_rate_filter]",
                format!(
                    "no prompt of {} has a pass rate within {} ..= {} (never solved {}, always \
                     solved {}): GRPO would have nothing to learn from",
                    found.estimated,
                    filter.min_pass,
                    filter.max_pass,
                    found.never_solved,
                    found.always_solved
                ),
            ));
        }
        Ok((kept, found))
    }

    /// Warns when warm-up targets, played through the arm's environment, are longer than
    /// GRPO's `max_completion_length`: the route they teach is cut off before its answer in
    /// every rollout, and GRPO learns to avoid it (measured: a tool route 16 tokens too long
    /// went from 17% of the rollouts to none).
    fn warn_of_long_targets(
        &self,
        sft: &SftConfig,
        arm: &Arm,
        train: &[Row],
        tokenizer: &dyn Tokenizer,
    ) -> Result<()> {
        let limit = self.config.grpo.max_completion_length;
        let sample = &train[..train.len().min(1000)];
        let mut long = 0;
        for row in sample {
            let environment = arm.environment.as_deref();
            let tokens = sft.completion(row, tokenizer, environment)?.0.len();
            long += usize::from(tokens > limit);
        }
        if long > 0 {
            eprintln!(
                "warning: {long} of {} warm-up targets{} are longer than [grpo] \
                 max_completion_length = {limit} tokens; GRPO's rollouts cut that route off \
                 before its end",
                sample.len(),
                if arm.environment.is_some() {
                    " (with the environment's answers)"
                } else {
                    ""
                },
            );
        }
        Ok(())
    }

    /// Evaluates `model` as the arm `name` into `results`, timing it as evaluation.
    fn score_arm(
        &self,
        name: &str,
        model: &CausalLm,
        tokenizer: &Arc<dyn Tokenizer>,
        sets: &[EvalSet],
        environment: Option<&dyn Environment>,
        results: &mut Results,
    ) -> Result<()> {
        let t = Instant::now();
        let (accuracy, tool_calls) = self.score(model, tokenizer.as_ref(), sets, environment)?;
        *results.phases_s.entry("evaluation".to_owned()).or_default() += t.elapsed().as_secs_f64();
        eprintln!("{name}: {}", summary(&accuracy));
        results.arms.insert(name.to_owned(), accuracy);
        if !tool_calls.is_empty() {
            results.tool_calls.insert(name.to_owned(), tool_calls);
        }
        Ok(())
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

fn summary(accuracy: &BTreeMap<String, f64>) -> String {
    accuracy
        .iter()
        .map(|(k, v)| format!("{k} {:.1}%", 100.0 * v))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = grpo_base::AtomicFile::create(path)?;
    file.writer()
        .write_all(bytes)
        .map_err(|e| RecipeError::io(file.temp_path(), e))?;
    Ok(file.commit()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The arm without the environment is not told of tools: its prompts are the same rows
    /// rendered with no `tools`.
    #[test]
    fn the_no_environment_arm_s_prompts_list_no_tools() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("tokenizer_config.json"),
            serde_json::json!({
                "chat_template": "{% if tools %}[{{ tools | length }} tools]{% endif %}\
                                  {{ messages[0].content }}"
            })
            .to_string(),
        )
        .unwrap();
        let rows = dir.path().join("rows.jsonl");
        std::fs::write(&rows, "{\"prompt\": \"2+2?\"}\n").unwrap();
        let text = format!(
            "name = \"t\"\n[[verifiers]]\nkind = \"arithmetic\"\n[model]\ndir = {:?}\n\
             chat_template = true\n[task]\nkind = \"jsonl\"\ntrain_file = {rows:?}\n\
             [environment]\nkind = \"tool_calling\"\ntools = [\"calculator\", \"python\"]\n",
            dir.path()
        );
        let run = Run::from_str(&text, "run.toml").unwrap();
        assert_eq!(run.data().unwrap().0[0].prompt(), "[2 tools]2+2?");
        let rows = run.config.task.rows(run.config.seed).unwrap();
        assert_eq!(run.rendered(rows, &[]).unwrap().0[0].prompt(), "2+2?");
    }
}
