//! The run file, parsed once: its sections as typed configs, plus the positions that errors
//! name.
//!
//! ```toml
//! name = "math_rl"
//! seed = 7
//! sft_control = true      # a control arm spending GRPO's compute on more SFT
//! sft_control_learning_rate = 1e-4  # its rate (default: the warm-up's)
//! no_environment_control = true  # with [environment]: the same run without it
//! [model]                 # from scratch with the byte tokenizer, or `dir = "hf-model/"`
//! hidden_size = 128
//! num_hidden_layers = 2
//! [task]                  # TaskConfig: arithmetic | countdown | functions | gsm8k | jsonl
//! kind = "arithmetic"
//! splits = ["test", "ood_template", "ood_length", "ood_composition"]
//! [task.settings]         # the task's own fields (ArithmeticTask, CountdownTask, …)
//! max_digits = 2
//! [lora]                  # LoraConfig (PEFT's names): GRPO and the control arm train adapters
//! r = 16                  # (and `[model] base_dtype = "bf16"` holds the frozen base in bf16)
//! [sft]                   # SftConfig: the warm-up
//! max_steps = 500
//! [pass_rate_filter]      # before GRPO: keep the prompts the warm-up solves sometimes
//! k = 8                   # (min_pass = 0.01, max_pass = 0.99, max_prompts = all)
//! [grpo]                  # GrpoConfig
//! max_steps = 200
//! [[verifiers]]           # as in a V.toml
//! kind = "arithmetic"
//! ```

use std::path::PathBuf;
use std::sync::Arc;

use grpo_environments::{Environment, EnvironmentConfig};
use grpo_policy::LoraConfig;
use grpo_policy::burn::tensor::FloatDType;
use grpo_trainer::{GrpoConfig, SftConfig};
use grpo_verifiers::{Registry, VerifierSet};
use serde::Deserialize;
use toml::{Spanned, Table};

use crate::error::{RecipeError, Result};
use crate::task::TaskConfig;

/// A run's settings.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub name: String,
    pub seed: u64,
    pub model: ModelConfig,
    pub task: TaskConfig,
    /// The supervised warm-up (none: GRPO starts from the model as it is).
    pub sft: Option<SftConfig>,
    /// Also train a control arm: the warm-up model trained with SFT for as much compute as
    /// GRPO used (counted by the trainer, [`grpo_trainer::compute`]).
    pub sft_control: bool,
    /// The control arm's learning rate, when it should not be the warm-up's: matched to
    /// GRPO's, the two arms differ in what they learn from, not in how far a step moves.
    pub sft_control_learning_rate: Option<f64>,
    /// With an environment: also run the recipe without it, on the same budget (SFT and GRPO
    /// steps) — a warm-up on the targets the environment would not answer, one-turn GRPO and
    /// evaluation. Its arms are `no_env_warmup` and `no_env_grpo`.
    pub no_environment_control: bool,
    /// Train LoRA adapters on the frozen model instead of the whole model, in the GRPO phase
    /// and the control arm (the warm-up, if any, trains the model the adapters sit on).
    pub lora: Option<LoraConfig>,
    /// Before GRPO, keep only the prompts within a band of pass rates under the warm-up model.
    pub pass_rate_filter: Option<PassRateFilter>,
    pub grpo: GrpoConfig,
    /// Roll out through an environment (multi-turn episodes, tool calls); evaluation of every
    /// arm runs episodes too.
    pub environment: Option<EnvironmentConfig>,
}

/// The model: a Hugging Face or grpo directory, or a Llama-shaped one from scratch with the
/// byte tokenizer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    pub dir: Option<PathBuf>,
    /// Render every text prompt with the model's chat template (`chat_template` in the
    /// directory's `tokenizer_config.json`) as one user turn plus the assistant's opening; an
    /// instruct model expects it. Conversational rows (`prompt` a list of messages) are always
    /// rendered with it, as TRL renders conversational data.
    pub chat_template: bool,
    /// With `chat_template`: a system turn before each text prompt (a conversation carries
    /// its own).
    pub system_prompt: Option<String>,
    /// With `[lora]`: the dtype the frozen base is held in while adapters train (`"bf16"`
    /// halves its memory; see [`CausalLm::with_base_dtype`](grpo_policy::CausalLm::with_base_dtype)).
    pub base_dtype: BaseDtype,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            dir: None,
            chat_template: false,
            system_prompt: None,
            base_dtype: BaseDtype::F32,
            hidden_size: 128,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            intermediate_size: 384,
        }
    }
}

/// `[pass_rate_filter]`: an offline difficulty filter. Before GRPO, each training prompt's pass
/// rate under the warm-up model is estimated from `k` completions (sampled as GRPO samples:
/// its temperature, `max_completion_length` and environment), and GRPO draws its prompts only
/// from those within `min_pass ..= max_pass` — a prompt solved always or never gives a group
/// of equal rewards, so no gradient. GRPO's `dynamic_sampling` is the online counterpart (it
/// resamples such groups every step). The estimate's token passes count in the SFT control's
/// budget, as dynamic sampling's extra rounds do.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PassRateFilter {
    /// Completions sampled per prompt.
    pub k: usize,
    /// The lowest pass rate kept (the default drops prompts never solved).
    pub min_pass: f64,
    /// The highest pass rate kept (the default drops prompts always solved).
    pub max_pass: f64,
    /// Estimate only the first this many training prompts (default: all of them). Each costs
    /// `k` completions, which the control arm is given too.
    pub max_prompts: Option<usize>,
}

impl Default for PassRateFilter {
    fn default() -> Self {
        PassRateFilter {
            k: 8,
            min_pass: 0.01,
            max_pass: 0.99,
            max_prompts: None,
        }
    }
}

impl PassRateFilter {
    fn validate(&self) -> std::result::Result<(), String> {
        if self.k == 0 {
            return Err("k: a pass rate needs at least one completion per prompt".into());
        }
        if self.max_prompts == Some(0) {
            return Err("max_prompts: 0 prompts leaves GRPO nothing to train on".into());
        }
        grpo_trainer::check_pass_band(self.min_pass, self.max_pass)
    }
}

/// The dtype of a frozen base, as a run file names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BaseDtype {
    F32,
    Bf16,
    F16,
}

impl From<BaseDtype> for FloatDType {
    fn from(dtype: BaseDtype) -> FloatDType {
        match dtype {
            BaseDtype::F32 => FloatDType::F32,
            BaseDtype::Bf16 => FloatDType::BF16,
            BaseDtype::F16 => FloatDType::F16,
        }
    }
}

/// The file as written: sections keep their positions for error messages.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunFile {
    name: String,
    #[serde(default)]
    seed: u64,
    model: Option<Spanned<ModelConfig>>,
    task: TaskConfig,
    sft: Option<Spanned<SftConfig>>,
    #[serde(default)]
    sft_control: bool,
    sft_control_learning_rate: Option<Spanned<f64>>,
    no_environment_control: Option<Spanned<bool>>,
    lora: Option<Spanned<LoraConfig>>,
    pass_rate_filter: Option<Spanned<PassRateFilter>>,
    grpo: Option<Spanned<GrpoConfig>>,
    environment: Option<Spanned<EnvironmentConfig>>,
    #[serde(default)]
    verifiers: Vec<Spanned<Table>>,
    time_budget_s: Option<f64>,
}

/// A parsed run file: its config, verifiers and built environment.
pub(crate) type Parsed = (RunConfig, VerifierSet, Option<Arc<dyn Environment>>);

/// Parses and validates a run file `text`: its config, its verifiers (built from the kinds
/// of `registry`) and its environment (built: external tools are started). Errors name
/// `origin`, the line and the key or section.
pub(crate) fn parse(text: &str, origin: &str, registry: &Registry) -> Result<Parsed> {
    let file: RunFile = toml::from_str(text).map_err(|e| {
        RecipeError::config(grpo_base::toml_location(origin, text, &e), e.message())
    })?;
    let grpo = match file.grpo {
        Some(grpo) => checked(grpo, "grpo", GrpoConfig::validate, text, origin)?,
        None => GrpoConfig::default(),
    };
    let sft = file
        .sft
        .map(|sft| checked(sft, "sft", SftConfig::validate, text, origin))
        .transpose()?;
    let lora = file
        .lora
        .map(|lora| checked(lora, "lora", LoraConfig::validate, text, origin))
        .transpose()?;
    let pass_rate_filter = file
        .pass_rate_filter
        .map(|f| {
            checked(
                f,
                "pass_rate_filter",
                PassRateFilter::validate,
                text,
                origin,
            )
        })
        .transpose()?;
    let model = match file.model {
        None => ModelConfig::default(),
        Some(model) => {
            let line = grpo_base::line_at(text, model.span().start);
            let model = model.into_inner();
            if model.base_dtype != BaseDtype::F32 && lora.is_none() {
                return Err(RecipeError::config(
                    format!("{origin}:{line}: [model] base_dtype"),
                    "a base below f32 needs a [lora] section: without adapters the base is \
                     what trains, and trained weights stay f32",
                ));
            }
            model
        }
    };
    let verifiers =
        registry.verifiers_from_entries(file.verifiers, file.time_budget_s, text, origin)?;
    let (environment, built) = match file.environment {
        None => (None, None),
        Some(section) => {
            let line = grpo_base::line_at(text, section.span().start);
            let config = section.into_inner();
            let built = config
                .build()
                .map_err(|e| RecipeError::config(format!("{origin}:{line}: [environment]"), e))?;
            (Some(config), Some(built))
        }
    };
    let control = file.no_environment_control;
    if let Some(control) = control.as_ref().filter(|c| *c.get_ref()) {
        let at = || {
            format!(
                "{origin}:{}: no_environment_control",
                grpo_base::line_at(text, control.span().start)
            )
        };
        let environment = built
            .as_ref()
            .ok_or_else(|| RecipeError::config(at(), "needs an [environment] to do without"))?;
        if let Some(sft) = &sft {
            without_environment(sft, &environment.turn_stops())
                .map_err(|why| RecipeError::config(at(), why))?;
        }
    }
    if let Some(rate) = &file.sft_control_learning_rate {
        let at = format!(
            "{origin}:{}: sft_control_learning_rate",
            grpo_base::line_at(text, rate.span().start)
        );
        if !file.sft_control {
            return Err(RecipeError::config(at, "needs `sft_control = true`"));
        }
        if !(rate.get_ref().is_finite() && *rate.get_ref() > 0.0) {
            return Err(RecipeError::config(at, "must be a positive number"));
        }
    }
    let config = RunConfig {
        name: file.name,
        seed: file.seed,
        model,
        task: file.task,
        sft,
        sft_control: file.sft_control,
        sft_control_learning_rate: file.sft_control_learning_rate.map(Spanned::into_inner),
        no_environment_control: control.is_some_and(|c| c.into_inner()),
        lora,
        pass_rate_filter,
        grpo,
        environment,
    };
    Ok((config, verifiers, built))
}

/// The warm-up of the no-environment control: `sft` without the targets the environment would
/// answer (those holding one of its turn `stops`), or why there are none left.
pub(crate) fn without_environment(
    sft: &SftConfig,
    stops: &[String],
) -> std::result::Result<SftConfig, String> {
    let answered = |template: &str| stops.iter().any(|stop| template.contains(stop.as_str()));
    let mut plain = sft.clone();
    plain.target_mix.retain(|t| !answered(&t.template));
    let left = if sft.target_mix.is_empty() {
        !sft.target_template.as_deref().is_some_and(answered)
    } else {
        !plain.target_mix.is_empty()
    };
    if !left {
        return Err(format!(
            "every warm-up target calls the environment (holds one of {stops:?}); give \
             [sft] target_mix a target without it"
        ));
    }
    Ok(plain)
}

/// A section's value after its own check, whose error is placed at the section's line.
fn checked<T, E: std::fmt::Display>(
    section: Spanned<T>,
    name: &str,
    validate: fn(&T) -> Result<(), E>,
    text: &str,
    origin: &str,
) -> Result<T> {
    let line = grpo_base::line_at(text, section.span().start);
    let value = section.into_inner();
    validate(&value).map_err(|e| RecipeError::config(format!("{origin}:{line}: [{name}]"), e))?;
    Ok(value)
}
