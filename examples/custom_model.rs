//! A model of your own, trained with GRPO: one type implementing `LanguageModel`, no change to
//! the sampler or the trainer.
//!
//! Run: `cargo run --release --features ndarray,wgpu --example custom_model`
//!
//! The model is not a transformer: a stack of minGRU layers (Feng et al. 2024, "Were RNNs All
//! We Needed?", eq. for minGRU), a recurrent net whose "cache" is one hidden state per row
//! and layer instead of keys and values. GRPO teaches it, from scratch, to start its answer
//! with the digit 7 — the reward is the built-in regex verifier.

use std::path::Path;
use std::sync::Arc;

use grpo::data::{Dataset, Row};
// `#[derive(Module)]` names `burn::…`: the facade's copy (a crate of your own would depend on
// burn directly).
use grpo::policy::burn;
use grpo::policy::burn::module::Module;
use grpo::policy::burn::nn::{
    Embedding, EmbeddingConfig, Linear, LinearConfig, RmsNorm, RmsNormConfig,
};
use grpo::policy::burn::store::{BurnpackStore, ModuleSnapshot};
use grpo::policy::burn::tensor::activation::sigmoid;
use grpo::policy::burn::tensor::{Device, Int, Tensor, TensorData};
use grpo::policy::{ByteTokenizer, LanguageModel, ModelCache, PolicyError, row_index};
use grpo::trainer::{GrpoConfig, GrpoTrainer, Metrics, Schedule};
use grpo::verifiers::regex_matcher::{RegexConfig, RegexMatcher};
use grpo::verifiers::{Member, VerifierSet};

/// The model's shape, saved as `config.json` beside the weights.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct GruConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub layers: usize,
}

/// Embedding → minGRU layers (pre-norm, residual) → norm → LM head.
#[derive(Module, Debug)]
pub struct GruLm {
    embed: Embedding,
    layers: Vec<MinGru>,
    norm: RmsNorm,
    head: Linear,
    #[module(skip)]
    config: GruConfig,
}

/// `h_t = (1 − z_t) ⊙ h_{t−1} + z_t ⊙ h̃_t`, with `z_t = σ(W_z x_t)` and `h̃_t = W_h x_t`: the
/// gate and the candidate see only the input, so both run over every position at once and
/// only the blend is sequential.
#[derive(Module, Debug)]
struct MinGru {
    norm: RmsNorm,
    gate: Linear,
    candidate: Linear,
}

/// Each layer's last hidden state `[rows, 1, hidden]`, and what a row's left padding is.
#[derive(Debug, Clone)]
pub struct GruState {
    states: Vec<Option<Tensor<3>>>,
    padding: Vec<usize>,
    /// Positions consumed so far (pad positions included).
    seen: usize,
}

impl ModelCache for GruState {
    fn select_rows(&mut self, rows: &[usize], device: &Device) {
        let index = row_index(rows, device);
        for state in self.states.iter_mut().flatten() {
            *state = state.clone().select(0, index.clone());
        }
        self.padding = rows.iter().map(|&r| self.padding[r]).collect();
    }

    fn batch_size(&self) -> usize {
        self.padding.len()
    }
}

impl GruLm {
    pub fn new(config: GruConfig, device: &Device) -> GruLm {
        let d = config.hidden_size;
        GruLm {
            embed: EmbeddingConfig::new(config.vocab_size, d).init(device),
            layers: (0..config.layers)
                .map(|_| MinGru {
                    norm: RmsNormConfig::new(d).init(device),
                    gate: LinearConfig::new(d, d).init(device),
                    candidate: LinearConfig::new(d, d).init(device),
                })
                .collect(),
            norm: RmsNormConfig::new(d).init(device),
            head: LinearConfig::new(d, config.vocab_size).init(device),
            config,
        }
    }
}

impl MinGru {
    /// `x` `[rows, seq, hidden]`, `real` `[rows, seq, 1]` (0 at padding) → the layer's outputs
    /// `[rows, seq, hidden]`; `state` `[rows, 1, hidden]` is carried in and out.
    fn forward(&self, x: Tensor<3>, real: &Tensor<3>, state: &mut Tensor<3>) -> Tensor<3> {
        let x = self.norm.forward(x);
        // A zero gate at a pad position leaves the state as it was: padding is never read.
        let z = sigmoid(self.gate.forward(x.clone())) * real.clone(); // [rows, seq, hidden]
        let candidate = self.candidate.forward(x);
        let seq = z.dims()[1];
        let mut outputs = Vec::with_capacity(seq);
        for t in 0..seq {
            let z_t = z.clone().narrow(1, t, 1); // [rows, 1, hidden]
            let c_t = candidate.clone().narrow(1, t, 1);
            // (1 − z)·h + z·h̃ = h + z·(h̃ − h)
            *state = state.clone() + z_t * (c_t - state.clone());
            outputs.push(state.clone());
        }
        Tensor::cat(outputs, 1)
    }
}

impl LanguageModel for GruLm {
    type Cache = GruState;

    fn vocab_size(&self) -> usize {
        self.config.vocab_size
    }

    fn device(&self) -> Device {
        self.embed.weight.val().device()
    }

    fn new_cache(&self, padding: Vec<usize>) -> GruState {
        GruState {
            states: vec![None; self.config.layers],
            padding,
            seen: 0,
        }
    }

    fn forward_hidden(&self, tokens: Tensor<2, Int>, cache: &mut GruState) -> Tensor<3> {
        let [rows, seq] = tokens.dims();
        let device = tokens.device();
        // 1 where position `seen + t` of a row is a real token, 0 on its left padding.
        let seen = cache.seen;
        let real: Vec<f32> = cache
            .padding
            .iter()
            .flat_map(|&pad| (0..seq).map(move |t| f32::from(u8::from(seen + t >= pad))))
            .collect();
        let real = Tensor::<3>::from_data(TensorData::new(real, [rows, seq, 1]), &device);
        let mut x = self.embed.forward(tokens); // [rows, seq, hidden]
        for (layer, state) in self.layers.iter().zip(cache.states.iter_mut()) {
            let mut h = state
                .take()
                .unwrap_or_else(|| Tensor::zeros([rows, 1, self.config.hidden_size], &device));
            x = x.clone() + layer.forward(x, &real, &mut h);
            *state = Some(h);
        }
        cache.seen += seq;
        self.norm.forward(x)
    }

    fn logits(&self, hidden: Tensor<3>) -> Tensor<3> {
        self.head.forward(hidden)
    }

    fn save(&self, dir: &Path) -> Result<(), PolicyError> {
        let write = |source| PolicyError::Write {
            path: dir.to_owned(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(write)?;
        let config = serde_json::to_string(&self.config).expect("a config serializes");
        std::fs::write(dir.join("config.json"), config).map_err(write)?;
        let path = dir.join("model.bpk");
        let mut store = BurnpackStore::from_file(&path)
            .auto_extension(false)
            .overwrite(true);
        self.save_into(&mut store)
            .map_err(|e| PolicyError::Checkpoint {
                path,
                message: e.to_string(),
            })
    }

    fn load(dir: &Path, device: &Device) -> Result<GruLm, PolicyError> {
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path).map_err(|source| PolicyError::Read {
            path: path.clone(),
            source,
        })?;
        let config = serde_json::from_str(&text).map_err(|e| PolicyError::InvalidFile {
            path,
            message: e.to_string(),
        })?;
        let mut model = GruLm::new(config, device);
        let path = dir.join("model.bpk");
        let mut store = BurnpackStore::from_file(&path).auto_extension(false);
        model
            .load_from(&mut store)
            .map_err(|e| PolicyError::Checkpoint {
                path,
                message: e.to_string(),
            })?;
        Ok(model)
    }
}

/// A 2-layer, 64-wide minGRU over bytes, seeded.
pub fn model(seed: u64) -> GruLm {
    let device = Device::flex();
    device.seed(seed);
    let config = GruConfig {
        vocab_size: ByteTokenizer::VOCAB_SIZE,
        hidden_size: 64,
        layers: 2,
    };
    GruLm::new(config, &device)
}

/// Reward 1 for a completion that starts with 7.
pub fn verifiers() -> VerifierSet {
    let starts_with_seven = RegexMatcher::new(RegexConfig {
        pattern: Some("^7".into()),
        ..Default::default()
    })
    .expect("a valid pattern");
    VerifierSet::new(vec![(Member::new("seven", starts_with_seven), 1.0)])
        .expect("a valid verifier set")
}

pub fn prompts() -> Dataset {
    let rows = ["Say a digit:", "Digit?", "Pick one:", "Your number:"]
        .iter()
        .map(|p| Row::from_prompt(*p))
        .collect();
    Dataset::from_rows(rows)
}

pub fn config(max_steps: usize) -> GrpoConfig {
    GrpoConfig {
        prompts_per_step: 4,
        num_generations: 8,
        max_steps,
        learning_rate: 1e-2,
        lr_scheduler_type: Schedule::Constant,
        max_completion_length: 2,
        seed: 7,
        ..Default::default()
    }
}

/// A GRPO run of `model`, built exactly as one of the built-in model would be.
pub fn trainer(
    model: GruLm,
    max_steps: usize,
    run_dir: Option<std::path::PathBuf>,
) -> grpo::trainer::Result<GrpoTrainer<GruLm>> {
    GrpoTrainer::new(
        model,
        Arc::new(ByteTokenizer),
        verifiers(),
        prompts(),
        config(max_steps),
        run_dir,
    )
}

#[allow(dead_code)] // The integration test includes this file for its functions only.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut trainer = trainer(model(1), 60, None)?;
    let metrics: Vec<Metrics> = trainer.train()?;
    for m in metrics.iter().step_by(5).chain(metrics.last()) {
        println!("step {:>3}  reward {:.3}", m["step"], m["reward"]);
    }
    Ok(())
}
