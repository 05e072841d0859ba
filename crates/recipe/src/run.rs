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
    EvalSettings, GrpoTrainer, Metrics, SftConfig, SftTrainer, evaluate, read_metrics,
};
use grpo_verifiers::{Registry, VerifierSet};
use serde::{Deserialize, Serialize};

use crate::chart::run_charts;
use crate::config::{RunConfig, parse};
use crate::error::{RecipeError, Result};
use crate::task::EvalSet;

/// Accuracy (greedy pass@1) per split for each arm, and timings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    pub arms: BTreeMap<String, BTreeMap<String, f64>>,
    /// The problems each split was evaluated on.
    #[serde(default)]
    pub rows: BTreeMap<String, usize>,
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

    /// The training rows and the evaluation sets, by split name (prompts rendered with the
    /// model's chat template when `[model] chat_template = true`).
    pub fn data(&self) -> Result<(Vec<Row>, Vec<EvalSet>)> {
        let (train, sets) = self.config.task.rows(self.config.seed)?;
        let model = &self.config.model;
        if !model.chat_template {
            return Ok((train, sets));
        }
        let missing = |why: &str| RecipeError::config("[model] chat_template", why);
        let dir = model
            .dir
            .as_ref()
            .ok_or_else(|| missing("needs `dir`, a model directory with a chat template"))?;
        let template = ChatTemplate::from_dir(dir)?.ok_or_else(|| {
            missing(&format!(
                "{} has no `chat_template` in tokenizer_config.json",
                dir.display()
            ))
        })?;
        let render = |rows: Vec<Row>| -> Result<Vec<Row>> {
            rows.into_iter()
                .map(|row| {
                    let mut messages = Vec::new();
                    if let Some(system) = &model.system_prompt {
                        messages.push(ChatMessage::new("system", system));
                    }
                    messages.push(ChatMessage::new("user", row.prompt()));
                    let prompt = template.render(&messages, true)?;
                    Ok(row.with("prompt", prompt))
                })
                .collect()
        };
        let sets = sets
            .into_iter()
            .map(|(name, rows)| Ok((name, render(rows)?)))
            .collect::<Result<_>>()?;
        Ok((render(train)?, sets))
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
        Ok(start.clone().with_lora(lora)?)
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
            let result = evaluate(
                model,
                tokenizer,
                &self.verifiers,
                self.environment
                    .as_deref()
                    .map(|e| (e, self.config.grpo.max_turns)),
                rows,
                &settings,
            )?;
            out.insert(name.clone(), result.pass_at_1);
        }
        Ok(out)
    }

    /// Runs everything into `out` (with `resume`, the GRPO phase continues from its newest
    /// checkpoint and the warm-up is not redone).
    pub fn execute(&self, out: &Path, device: &Device, resume: bool) -> Result<Results> {
        let started = Instant::now();
        std::fs::create_dir_all(out).map_err(|e| RecipeError::io(out, e))?;
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
                self.trainable(&warm, "grpo", device)?,
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
        if let Some(environment) = &self.environment {
            trainer = trainer.with_environment(environment.clone());
        }
        trainer.train()?;
        let grpo_model = trainer.model().valid();
        if grpo_model.lora().is_some() {
            // The adapter alone, as peft saves one: `grpo merge --base <warm-up or model dir>
            // --adapter grpo_adapter -o merged` makes a plain model of it.
            grpo_model.save_adapter(&out.join("grpo_adapter"))?;
            eprintln!("grpo: adapter in {}", out.join("grpo_adapter").display());
        }
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
                self.trainable(&warm, "sft_control", device)?,
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
            rows: sets
                .iter()
                .map(|(name, rows)| (name.clone(), rows.len()))
                .collect(),
            wall_s: started.elapsed().as_secs_f64(),
            phases_s: phases,
        };
        let json = serde_json::to_string_pretty(&results).expect("results serialize");
        write_atomic(&out.join("results.json"), json.as_bytes())?;
        write_atomic(&out.join("results.md"), results.markdown().as_bytes())?;
        run_charts(&metrics, &results.arms["warmup"], out)?;
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
