//! LoRA adapters (Hu et al. 2021) on the model's projections, saved and loaded in PEFT's
//! format (`adapter_config.json` + `adapter_model.safetensors`).
//!
//! The adapters are burn's own [`LoraAdapter`]s (`a` `[d_in, r]`, `b` `[r, d_out]`, `scale`),
//! attached to the frozen projection weights by a [`Reparameterizer`], so the optimiser, the
//! autodiff graph, `valid()`/`fork()` and checkpoints see them as ordinary parameters. What
//! differs from burn's `apply_lora` is the forward: burn materialises `W + scale·a·b` (a
//! weight-sized tensor, and a weight-sized gradient, per projection per forward); the model
//! here computes `x·W + scale·(x·a)·b` (Hu et al. 2021, eq. 3, as PEFT does), so the backward
//! never forms a gradient for the frozen weight — about a third of a projection's training
//! arithmetic — and the base with the adapters off is the same forward minus one term.

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::{LoraAdapter, Module, Param, Reparameterizer};
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::error::{PolicyError, Result};
use crate::model::CausalLm;

const ADAPTER_CONFIG: &str = "adapter_config.json";
const ADAPTER_WEIGHTS: &str = "adapter_model.safetensors";
/// PEFT's prefix before the base model's own module path.
const PEFT_PREFIX: &str = "base_model.model.";

/// The projections an adapter can target, by their Hugging Face names.
pub const LORA_TARGETS: [&str; 7] = [
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
];

/// The block of each of [`LORA_TARGETS`] in a layer's module path.
const LORA_BLOCKS: [&str; 7] = [
    "self_attn",
    "self_attn",
    "self_attn",
    "self_attn",
    "mlp",
    "mlp",
    "mlp",
];

/// Which projections get an adapter: PEFT's `target_modules`, a list of module names or
/// `"all-linear"` (every projection of every layer; never the LM head).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TargetModules {
    Names(Vec<String>),
    AllLinear(String),
}

impl Default for TargetModules {
    /// PEFT's default for Llama and Qwen2: the query and value projections.
    fn default() -> Self {
        TargetModules::Names(vec!["q_proj".into(), "v_proj".into()])
    }
}

/// A LoRA configuration, with PEFT's names and defaults (`LoraConfig`): `r` 8, `lora_alpha` 8,
/// `target_modules` `["q_proj", "v_proj"]`. The update of a targeted projection is
/// `(lora_alpha / r)·x·A·B`, or `(lora_alpha / √r)·x·A·B` with `use_rslora` (Kalajdzievski
/// 2023).
///
/// ```
/// use grpo_policy::LoraConfig;
///
/// let config: LoraConfig = serde_json::from_str(r#"{"r": 16, "lora_alpha": 32, "target_modules": ["q_proj", "mlp.up_proj"]}"#).unwrap();
/// config.validate().unwrap();
/// assert!(config.targets_module("model.layers.3.self_attn.q_proj"));
/// assert!(config.targets_module("model.layers.3.mlp.up_proj"));
/// assert!(!config.targets_module("model.layers.3.mlp.down_proj"));
/// assert_eq!(config.scale(), 2.0);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoraConfig {
    #[serde(default = "default_rank")]
    pub r: usize,
    #[serde(default = "default_alpha")]
    pub lora_alpha: f64,
    #[serde(default)]
    pub target_modules: TargetModules,
    /// Only 0 is accepted: dropout would draw from the backend's random stream, which a
    /// resumed run cannot replay, so resume would stop being exact.
    #[serde(default)]
    pub lora_dropout: f64,
    #[serde(default)]
    pub use_rslora: bool,
}

fn default_rank() -> usize {
    8
}

fn default_alpha() -> f64 {
    8.0
}

impl Default for LoraConfig {
    fn default() -> Self {
        LoraConfig {
            r: default_rank(),
            lora_alpha: default_alpha(),
            target_modules: TargetModules::default(),
            lora_dropout: 0.0,
            use_rslora: false,
        }
    }
}

impl LoraConfig {
    /// A configuration of rank `r` and scale numerator `lora_alpha` on the named projections.
    pub fn new(r: usize, lora_alpha: f64, targets: &[&str]) -> Self {
        LoraConfig {
            r,
            lora_alpha,
            target_modules: TargetModules::Names(targets.iter().map(|t| t.to_string()).collect()),
            ..LoraConfig::default()
        }
    }

    /// Whether the projection at `module` (`model.layers.3.mlp.up_proj`) gets an adapter. As
    /// PEFT matches, an entry of `target_modules` names the module's whole path or a suffix of
    /// it at a dot: `up_proj`, `mlp.up_proj`, `model.layers.3.mlp.up_proj` (PEFT itself saves
    /// `"all-linear"` as the list of full paths).
    pub fn targets_module(&self, module: &str) -> bool {
        match &self.target_modules {
            TargetModules::AllLinear(_) => true,
            TargetModules::Names(entries) => entries.iter().any(|entry| {
                module == entry
                    || module
                        .strip_suffix(entry.as_str())
                        .is_some_and(|head| head.ends_with('.'))
            }),
        }
    }

    /// Checks `target_modules`: `"all-linear"`, or a list whose every entry is a dot-suffix of
    /// some `model.layers.<i>.<block>.<projection>` path, none twice.
    fn validate_targets(&self) -> Result<()> {
        let invalid = |message: String| PolicyError::InvalidLora {
            field: "target_modules".into(),
            message,
        };
        let entries = match &self.target_modules {
            TargetModules::AllLinear(all) if all == "all-linear" => return Ok(()),
            TargetModules::AllLinear(other) => {
                return Err(invalid(format!(
                    "is the string {other:?}; expected a list of module names or \"all-linear\" \
                     (PEFT's regular-expression form is not supported)"
                )));
            }
            TargetModules::Names(entries) => entries,
        };
        if entries.is_empty() {
            return Err(invalid("is empty".into()));
        }
        for (i, entry) in entries.iter().enumerate() {
            if !is_projection_suffix(entry) {
                return Err(invalid(format!(
                    "names `{entry}`, which is not a projection of this model (known: {}, \
                     optionally after their block and layer: self_attn.q_proj, \
                     model.layers.0.mlp.up_proj)",
                    LORA_TARGETS.join(", ")
                )));
            }
            if entries[..i].contains(entry) {
                return Err(invalid(format!("names `{entry}` twice")));
            }
        }
        Ok(())
    }

    /// Checks every field; the error names the field at fault.
    pub fn validate(&self) -> Result<()> {
        let invalid = |field: &str, message: String| PolicyError::InvalidLora {
            field: field.into(),
            message,
        };
        if self.r == 0 {
            return Err(invalid("r", "must be at least 1".into()));
        }
        if !(self.lora_alpha.is_finite() && self.lora_alpha > 0.0) {
            return Err(invalid(
                "lora_alpha",
                format!("must be a positive number, got {}", self.lora_alpha),
            ));
        }
        if self.lora_dropout != 0.0 {
            return Err(invalid(
                "lora_dropout",
                format!(
                    "is {}; only 0 is supported (dropout's random draws could not be replayed \
                     by a resumed run)",
                    self.lora_dropout
                ),
            ));
        }
        self.validate_targets()
    }

    /// The factor of the low-rank update: `lora_alpha / r` (Hu et al. 2021, §4.1), or
    /// `lora_alpha / √r` with rsLoRA (Kalajdzievski 2023, eq. 4).
    pub fn scale(&self) -> f64 {
        if self.use_rslora {
            self.lora_alpha / (self.r as f64).sqrt()
        } else {
            self.lora_alpha / self.r as f64
        }
    }
}

/// PEFT's `adapter_config.json`: the [`LoraConfig`] plus the fields PEFT writes. Reading one,
/// every field that changes the math and is not supported here is refused by name.
#[derive(Debug, Serialize, Deserialize)]
struct PeftAdapterConfig {
    peft_type: String,
    #[serde(default)]
    task_type: Option<String>,
    #[serde(default)]
    base_model_name_or_path: Option<String>,
    #[serde(default = "default_rank")]
    r: usize,
    #[serde(default = "default_alpha")]
    lora_alpha: f64,
    #[serde(default)]
    target_modules: Option<TargetModules>,
    #[serde(default)]
    lora_dropout: f64,
    #[serde(default)]
    use_rslora: bool,
    #[serde(default)]
    fan_in_fan_out: bool,
    #[serde(default = "default_bias")]
    bias: String,
    #[serde(default)]
    use_dora: bool,
    #[serde(default)]
    modules_to_save: Option<Vec<String>>,
    #[serde(default)]
    layers_to_transform: Option<serde_json::Value>,
    #[serde(default)]
    layer_replication: Option<serde_json::Value>,
    #[serde(default)]
    exclude_modules: Option<serde_json::Value>,
    #[serde(default)]
    lora_bias: bool,
    #[serde(default)]
    rank_pattern: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    alpha_pattern: BTreeMap<String, serde_json::Value>,
    #[serde(default = "default_init")]
    init_lora_weights: serde_json::Value,
    #[serde(default)]
    inference_mode: bool,
}

fn default_bias() -> String {
    "none".into()
}

fn default_init() -> serde_json::Value {
    serde_json::Value::Bool(true)
}

impl PeftAdapterConfig {
    fn from_lora(config: &LoraConfig) -> Self {
        PeftAdapterConfig {
            peft_type: "LORA".into(),
            task_type: Some("CAUSAL_LM".into()),
            base_model_name_or_path: None,
            r: config.r,
            lora_alpha: config.lora_alpha,
            target_modules: Some(config.target_modules.clone()),
            lora_dropout: config.lora_dropout,
            use_rslora: config.use_rslora,
            fan_in_fan_out: false,
            bias: default_bias(),
            use_dora: false,
            modules_to_save: None,
            layers_to_transform: None,
            layer_replication: None,
            exclude_modules: None,
            lora_bias: false,
            rank_pattern: BTreeMap::new(),
            alpha_pattern: BTreeMap::new(),
            init_lora_weights: default_init(),
            inference_mode: true,
        }
    }

    /// The LoRA configuration it describes, or the first field this crate cannot honour.
    /// (`lora_dropout` is read but not applied: a loaded adapter is used, not trained on
    /// with dropout; training goes through [`LoraConfig::validate`].)
    fn into_lora(self, path: &Path) -> Result<LoraConfig> {
        let set = |value: &Option<serde_json::Value>| {
            value.as_ref().is_some_and(|v| {
                !(v.is_null()
                    || v.as_array().is_some_and(|a| a.is_empty())
                    || v.as_str() == Some(""))
            })
        };
        let modules_to_save = self.modules_to_save.as_ref().is_some_and(|m| !m.is_empty());
        // Each field that changes the adapter's math, and why it is refused.
        let unsupported = [
            (
                self.peft_type != "LORA",
                "peft_type",
                "only \"LORA\" adapters load here",
            ),
            (self.use_dora, "use_dora", "DoRA adapters are not supported"),
            (self.bias != "none", "bias", "only \"none\" is supported"),
            (
                self.fan_in_fan_out,
                "fan_in_fan_out",
                "the projections here are nn.Linear-shaped",
            ),
            (
                modules_to_save,
                "modules_to_save",
                "fully trained extra modules are not supported",
            ),
            (
                set(&self.layers_to_transform),
                "layers_to_transform",
                "adapting only some layers is not supported",
            ),
            (
                set(&self.layer_replication),
                "layer_replication",
                "replicated layers are not supported",
            ),
            (
                set(&self.exclude_modules),
                "exclude_modules",
                "excluding modules is not supported",
            ),
            (
                self.lora_bias,
                "lora_bias",
                "adapters with a bias are not supported",
            ),
            (
                !self.rank_pattern.is_empty(),
                "rank_pattern",
                "per-module ranks are not supported",
            ),
            (
                !self.alpha_pattern.is_empty(),
                "alpha_pattern",
                "per-module alphas are not supported",
            ),
        ];
        if let Some((_, field, why)) = unsupported.iter().find(|(refused, ..)| *refused) {
            return Err(PolicyError::InvalidFile {
                path: path.to_owned(),
                message: format!("`{field}`: {why}"),
            });
        }
        let config = LoraConfig {
            r: self.r,
            lora_alpha: self.lora_alpha,
            target_modules: self.target_modules.unwrap_or_default(),
            lora_dropout: 0.0,
            use_rslora: self.use_rslora,
        };
        config.validate().map_err(|e| PolicyError::InvalidFile {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        Ok(config)
    }
}

/// Whether `entry` is a dot-suffix of a projection's path `model.layers.<i>.<block>.<name>`.
fn is_projection_suffix(entry: &str) -> bool {
    let segments: Vec<&str> = entry.rsplit('.').collect(); // name, block, i, "layers", "model"
    let Some(index) = LORA_TARGETS.iter().position(|name| *name == segments[0]) else {
        return false;
    };
    let pattern = [LORA_BLOCKS[index], "<i>", "layers", "model"];
    segments.len() <= 1 + pattern.len()
        && segments[1..]
            .iter()
            .zip(pattern)
            .all(|(segment, expected)| match expected {
                "<i>" => !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()),
                _ => *segment == expected,
            })
}

/// The module path of the projection a parameter path belongs to, if it is a projection
/// weight the config targets: `model.layers.3.mlp.up_proj.weight` → `model.layers.3.mlp.up_proj`.
fn targeted_module<'p>(path: &'p str, config: &LoraConfig) -> Option<&'p str> {
    let module = path.strip_suffix(".weight")?;
    let name = module.rsplit('.').next()?;
    (module.starts_with("model.layers.")
        && LORA_TARGETS.contains(&name)
        && config.targets_module(module))
    .then_some(module)
}

/// The factors of one adapter, in burn's layout: `a` `[d_in, r]`, `b` `[r, d_out]`.
type Factors = (Tensor<2>, Tensor<2>);

/// Attaches adapters to the targeted weights and freezes every base parameter: fresh ones
/// (PEFT's initialisation) or the factors read from a file.
struct AttachAdapters<'c> {
    config: &'c LoraConfig,
    /// By module path; `None`: initialise.
    loaded: Option<BTreeMap<String, Factors>>,
    attached: usize,
    /// The first factor whose shape disagrees with its weight: (module, expected, found).
    mismatch: Option<(String, Vec<usize>, Vec<usize>)>,
}

// On `&mut`: `apply_reparameterization` takes its reparameterizer by value, and what it
// attached (or found wrong) is read afterwards.
impl Reparameterizer for &mut AttachAdapters<'_> {
    type Reparam = LoraAdapter;

    fn reparameterize<const D: usize>(
        &mut self,
        path: &str,
        param: Param<Tensor<D>>,
    ) -> (Param<Tensor<D>>, Option<LoraAdapter>) {
        let base = param.set_require_grad(false);
        let Some(module) = targeted_module(path, self.config).filter(|_| D == 2) else {
            return (base, None);
        };
        let weight = base.val();
        let dims = weight.dims();
        let (d_in, d_out) = (dims[0], dims[1]);
        let device = weight.device();
        let (a, b) = match &mut self.loaded {
            None => {
                // PEFT's default: A ~ kaiming_uniform(a = √5), i.e. U(±1/√d_in); B = 0, so
                // the adapted model starts as the base.
                let bound = 1.0 / (d_in as f64).sqrt();
                let a = Tensor::<2>::random(
                    [d_in, self.config.r],
                    Distribution::Uniform(-bound, bound),
                    &device,
                );
                (a, Tensor::<2>::zeros([self.config.r, d_out], &device))
            }
            Some(loaded) => match loaded.remove(module) {
                None => return (base, None), // reported as missing by the caller
                Some((a, b)) => {
                    let expected = [vec![d_in, self.config.r], vec![self.config.r, d_out]];
                    let found = [a.dims().to_vec(), b.dims().to_vec()];
                    if found != expected {
                        self.mismatch.get_or_insert((
                            module.to_string(),
                            expected.concat(),
                            found.concat(),
                        ));
                        return (base, None);
                    }
                    (a.to_device(&device), b.to_device(&device))
                }
            },
        };
        self.attached += 1;
        let adapter = LoraAdapter {
            a: Param::from_tensor(a),
            b: Param::from_tensor(b),
            scale: self.config.scale(),
        };
        (base, Some(adapter))
    }
}

impl CausalLm {
    /// Adds fresh LoRA adapters (PEFT's initialisation: B = 0, so the model's outputs are
    /// unchanged) to the targeted projections of every layer, and freezes every other
    /// parameter: an optimiser of this model trains the adapters only.
    pub fn with_lora(self, config: &LoraConfig) -> Result<Self> {
        config.validate()?;
        self.attach(config, None, Path::new(""))
    }

    fn attach(
        self,
        config: &LoraConfig,
        loaded: Option<BTreeMap<String, Factors>>,
        file: &Path,
    ) -> Result<Self> {
        if self.lora().is_some() {
            return Err(PolicyError::InvalidLora {
                field: "adapters".into(),
                message: "this model already has LoRA adapters".into(),
            });
        }
        let layers = self.config().num_hidden_layers;
        let targeted = (0..layers)
            .flat_map(|i| {
                LORA_TARGETS
                    .iter()
                    .zip(LORA_BLOCKS)
                    .map(move |(name, block)| format!("model.layers.{i}.{block}.{name}"))
            })
            .filter(|module| config.targets_module(module))
            .count();
        if targeted == 0 {
            return Err(PolicyError::InvalidLora {
                field: "target_modules".into(),
                message: format!("matches no projection of this {layers}-layer model"),
            });
        }
        let mut attach = AttachAdapters {
            config,
            loaded,
            attached: 0,
            mismatch: None,
        };
        let model = self.apply_reparameterization(&mut attach);
        if let Some((module, expected, found)) = attach.mismatch {
            return Err(PolicyError::ShapeMismatch {
                path: file.to_owned(),
                tensor: format!("{PEFT_PREFIX}{module}.lora_A/B.weight (as [in, r] + [r, out])"),
                expected,
                found,
            });
        }
        if let Some(left) = attach.loaded.as_ref().and_then(|l| l.keys().next()) {
            return Err(PolicyError::InvalidFile {
                path: file.to_owned(),
                message: format!(
                    "adapter for `{left}`, which is not a targeted projection of this model"
                ),
            });
        }
        if attach.attached != targeted {
            // Only a file can leave a targeted projection without its factors.
            return Err(PolicyError::InvalidFile {
                path: file.to_owned(),
                message: format!(
                    "holds {} adapters; the config's target_modules name {targeted} projections",
                    attach.attached
                ),
            });
        }
        Ok(model.with_lora_config(Some(config.clone())))
    }

    /// Loads a PEFT adapter directory (`adapter_config.json` + `adapter_model.safetensors`)
    /// onto this model, which must be the base it was trained on (same shapes).
    pub fn load_adapter(self, dir: &Path) -> Result<Self> {
        let config_path = dir.join(ADAPTER_CONFIG);
        let text = std::fs::read_to_string(&config_path).map_err(|source| PolicyError::Read {
            path: config_path.clone(),
            source,
        })?;
        let peft: PeftAdapterConfig =
            serde_json::from_str(&text).map_err(|e| PolicyError::InvalidFile {
                path: config_path.clone(),
                message: e.to_string(),
            })?;
        let config = peft.into_lora(&config_path)?;
        let weights = dir.join(ADAPTER_WEIGHTS);
        let device = crate::LanguageModel::device(&self);
        let factors = read_factors(&weights, &device)?;
        self.attach(&config, Some(factors), &weights)
    }

    /// Writes the adapters as a PEFT directory (`adapter_config.json` +
    /// `adapter_model.safetensors`, f32), each file atomically: what `peft`'s
    /// `PeftModel.from_pretrained(base, dir)` loads.
    pub fn save_adapter(&self, dir: &Path) -> Result<()> {
        let Some(config) = self.lora() else {
            return Err(PolicyError::InvalidLora {
                field: "adapters".into(),
                message: "this model has no LoRA adapters to save".into(),
            });
        };
        std::fs::create_dir_all(dir).map_err(|source| PolicyError::Write {
            path: dir.to_owned(),
            source,
        })?;
        // name → (shape, little-endian f32 bytes), PyTorch's [out, in] layout.
        let mut tensors: BTreeMap<String, (Vec<usize>, Vec<u8>)> = BTreeMap::new();
        for (module, adapter) in self.adapters() {
            for (factor, tensor) in [("lora_A", adapter.a.val()), ("lora_B", adapter.b.val())] {
                let tensor = tensor.transpose(); // [in, r] → [r, in]; [r, out] → [out, r]
                let shape = tensor.dims().to_vec();
                let values = tensor.into_data().convert::<f32>();
                let bytes = values
                    .as_slice::<f32>()
                    .expect("f32 after convert")
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect();
                tensors.insert(
                    format!("{PEFT_PREFIX}{module}.{factor}.weight"),
                    (shape, bytes),
                );
            }
        }
        let views = tensors.iter().map(|(name, (shape, bytes))| {
            let view =
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
                    .expect("shape and bytes agree");
            (name.clone(), view)
        });
        // The metadata transformers expects of a PyTorch-format file. (Collected into the map
        // type safetensors names, std's or hashbrown's by its features.)
        let metadata = [("format".to_string(), "pt".to_string())]
            .into_iter()
            .collect();
        let file =
            safetensors::serialize(views, Some(metadata)).map_err(|e| PolicyError::Checkpoint {
                path: dir.join(ADAPTER_WEIGHTS),
                message: e.to_string(),
            })?;
        grpo_base::replace(&dir.join(ADAPTER_WEIGHTS), |tmp| {
            std::fs::write(tmp, &file).map_err(|source| PolicyError::Write {
                path: tmp.to_owned(),
                source,
            })
        })?;
        let text = serde_json::to_string_pretty(&PeftAdapterConfig::from_lora(config))
            .expect("an adapter config serializes");
        grpo_base::replace(&dir.join(ADAPTER_CONFIG), |tmp| {
            std::fs::write(tmp, &text).map_err(|source| PolicyError::Write {
                path: tmp.to_owned(),
                source,
            })
        })?;
        Ok(())
    }

    /// Folds the adapters into the weights (`W + scale·A·B`) and drops them: a plain model,
    /// to save as a Hugging Face directory with [`CausalLm::save_safetensors`]. A base held in
    /// half precision is widened to f32 first: the merged weights are f32.
    pub fn merge_adapters(self) -> Self {
        self.cast_base(burn::tensor::FloatDType::F32)
            .materialize()
            .with_lora_config(None)
    }

    /// Every adapter, by the module path of its projection (Hugging Face's names), in layer order.
    pub fn adapters(&self) -> Vec<(String, &LoraAdapter)> {
        let mut found = Vec::new();
        for (index, layer) in self.model.layers.iter().enumerate() {
            for (name, linear) in layer.projections() {
                if let Some(adapter) = linear.weight.adapter() {
                    found.push((format!("model.layers.{index}.{name}"), adapter));
                }
            }
        }
        found
    }

    /// Whether `dir` holds a PEFT adapter (its `adapter_config.json`).
    pub fn has_adapter(dir: &Path) -> bool {
        dir.join(ADAPTER_CONFIG).exists()
    }
}

/// The LoRA factors of a PEFT `adapter_model.safetensors`, by module path, in burn's layout
/// (`a` `[d_in, r]`, `b` `[r, d_out]`, f32; F16/BF16 files are widened).
fn read_factors(path: &Path, device: &Device) -> Result<BTreeMap<String, Factors>> {
    let invalid = |message: String| PolicyError::InvalidFile {
        path: path.to_owned(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|source| PolicyError::Read {
        path: path.to_owned(),
        source,
    })?;
    let file = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| invalid(format!("not a safetensors file: {e}")))?;
    let mut halves: BTreeMap<String, [Option<Tensor<2>>; 2]> = BTreeMap::new();
    for (name, view) in file.tensors() {
        let (module, factor) = name
            .strip_prefix(PEFT_PREFIX)
            .and_then(|rest| {
                rest.strip_suffix(".lora_A.weight")
                    .map(|m| (m, 0))
                    .or_else(|| rest.strip_suffix(".lora_B.weight").map(|m| (m, 1)))
            })
            .ok_or_else(|| {
                invalid(format!(
                    "tensor `{name}` is not a LoRA factor ({PEFT_PREFIX}<module>.lora_A.weight or .lora_B.weight)"
                ))
            })?;
        let shape = view.shape().to_vec();
        if shape.len() != 2 {
            return Err(invalid(format!(
                "tensor `{name}` has shape {shape:?}; expected 2-D"
            )));
        }
        let raw = view.data();
        let values: Vec<f32> = match view.dtype() {
            safetensors::Dtype::F32 => raw
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            safetensors::Dtype::BF16 => raw
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            safetensors::Dtype::F16 => raw
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            other => {
                return Err(invalid(format!(
                    "tensor `{name}` has dtype {other:?}; expected F32, F16 or BF16"
                )));
            }
        };
        // PyTorch's layout, [r, in] / [out, r] → burn's [in, r] / [r, out], transposed here
        // so that the factor is contiguous as a fresh one is (a strided view would take
        // other kernels and, in the last bits, break a resumed run's exactness).
        let (rows, columns) = (shape[0], shape[1]);
        let transposed: Vec<f32> = (0..columns)
            .flat_map(|c| (0..rows).map(move |r| (r, c)))
            .map(|(r, c)| values[r * columns + c])
            .collect();
        let tensor = Tensor::<2>::from_data(TensorData::new(transposed, [columns, rows]), device);
        halves.entry(module.to_string()).or_default()[factor] = Some(tensor);
    }
    halves
        .into_iter()
        .map(|(module, [a, b])| match (a, b) {
            (Some(a), Some(b)) => Ok((module, (a, b))),
            (a, _) => Err(PolicyError::MissingTensor {
                path: path.to_owned(),
                tensor: format!(
                    "{PEFT_PREFIX}{module}.{}.weight",
                    if a.is_none() { "lora_A" } else { "lora_B" }
                ),
            }),
        })
        .collect()
}
