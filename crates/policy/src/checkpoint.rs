//! Loading and saving weights: Hugging Face directories (safetensors, sharded or not) and our
//! own checkpoints (burnpack), every write atomic.
//!
//! A directory holds `config.json` and either `model.safetensors`,
//! `model.safetensors.index.json` with its shards, or `model.bpk` (ours). Tensor names are
//! Hugging Face's; burn-store's PyTorch adapters transpose linear weights (PyTorch stores
//! `[out, in]`, burn `[in, out]`) and rename norm weights (`weight` ↔ `gamma`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use burn::store::{
    BurnToPyTorchAdapter, BurnpackStore, ChainAdapter, FloatCastAdapter, ModuleSnapshot,
    PathFilter, PyTorchToBurnAdapter, SafetensorsStore,
};
use burn::tensor::{DType, Device};

use crate::config::LmConfig;
use crate::error::{PolicyError, Result};
use crate::model::CausalLm;

const CONFIG: &str = "config.json";
const SAFETENSORS: &str = "model.safetensors";
const SAFETENSORS_INDEX: &str = "model.safetensors.index.json";
const BURNPACK: &str = "model.bpk";

/// A tensor's entry in a safetensors header.
#[derive(Debug, Clone, serde::Deserialize)]
struct HeaderEntry {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: [u64; 2],
}

impl CausalLm {
    /// Loads a model directory: a Hugging Face one (`config.json` + safetensors) or one saved
    /// by [`CausalLm::save`] (`config.json` + `model.bpk`); with the LoRA adapter saved beside
    /// them (PEFT's `adapter_config.json` + `adapter_model.safetensors`) attached.
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let model = CausalLm::load_base(dir, device)?;
        if CausalLm::has_adapter(dir) {
            return model.load_adapter(dir);
        }
        Ok(model)
    }

    fn load_base(dir: &Path, device: &Device) -> Result<Self> {
        let config = LmConfig::from_file(&dir.join(CONFIG))?;
        let mut model = CausalLm::new(&config, device)?;
        if dir.join(BURNPACK).exists() {
            let path = dir.join(BURNPACK);
            // Tensors keep the dtype they were saved in (a base held in bf16 under LoRA stays
            // bf16), unless this device cannot hold it: then they are widened to f32.
            let mut store = BurnpackStore::from_file(&path);
            if !device.supports_dtype(DType::BF16) || !device.supports_dtype(DType::F16) {
                store = store.with_from_adapter(FloatCastAdapter::to(DType::F32));
            }
            let result = model
                .load_from(&mut store)
                .map_err(|e| checkpoint_error(&path, e))?;
            if let Some((missing, _)) = result.missing.first() {
                return Err(PolicyError::MissingTensor {
                    path,
                    tensor: missing.clone(),
                });
            }
            return Ok(model);
        }
        let shards = safetensors_files(dir)?;
        // Check names, shapes and sizes from the headers first, so a bad checkpoint is
        // reported in the checkpoint's own terms (Hugging Face names, [out, in] shapes).
        let mut found: BTreeMap<String, (PathBuf, HeaderEntry)> = BTreeMap::new();
        for shard in &shards {
            for (name, entry) in read_header(shard)? {
                found.insert(name, (shard.clone(), entry));
            }
        }
        for tensor in model.collect(None, Some(Box::new(BurnToPyTorchAdapter)), false) {
            let expected = tensor.shape.to_vec();
            match found.get(&tensor.name) {
                None => {
                    return Err(PolicyError::MissingTensor {
                        path: shards.first().cloned().unwrap_or_else(|| dir.to_owned()),
                        tensor: tensor.name,
                    });
                }
                Some((path, entry)) if entry.shape != expected => {
                    return Err(PolicyError::ShapeMismatch {
                        path: path.clone(),
                        tensor: tensor.name,
                        expected,
                        found: entry.shape.clone(),
                    });
                }
                Some(_) => {}
            }
        }
        for shard in &shards {
            // bf16/f16 checkpoints are widened to f32: training needs the precision.
            let adapter = ChainAdapter::new(PyTorchToBurnAdapter, FloatCastAdapter::to(DType::F32));
            let mut store = SafetensorsStore::from_file(shard)
                .with_from_adapter(adapter)
                .allow_partial(true)
                .validate(true);
            let result = model
                .load_from(&mut store)
                .map_err(|e| checkpoint_error(shard, e))?;
            if let Some(error) = result.errors.first() {
                return Err(checkpoint_error(shard, error));
            }
        }
        Ok(model)
    }

    /// Saves `config.json` and the weights as a Hugging Face directory (`model.safetensors`,
    /// f32, Hugging Face names and layouts): loadable by `transformers` and by [`CausalLm::load`].
    /// LoRA adapters go beside it in PEFT's format (see [`CausalLm::save_adapter`]); merge
    /// them first ([`CausalLm::merge_adapters`]) for one plain model.
    pub fn save_safetensors(&self, dir: &Path) -> Result<()> {
        self.write_config(dir)?;
        grpo_base::replace(&dir.join(SAFETENSORS), |tmp| {
            let mut store = SafetensorsStore::from_file(tmp)
                .with_to_adapter(BurnToPyTorchAdapter)
                .with_predicate(is_base_tensor);
            self.save_into(&mut store)
                .map_err(|e| checkpoint_error(tmp, e))
        })?;
        self.save_adapter_if_any(dir)
    }

    /// Saves `config.json` and the weights in burn's burnpack format (`model.bpk`): our own
    /// checkpoints, exact and fast to load.
    pub fn save(&self, dir: &Path) -> Result<()> {
        self.write_config(dir)?;
        grpo_base::replace(&dir.join(BURNPACK), |tmp| {
            let mut store = BurnpackStore::from_file(tmp)
                .auto_extension(false)
                .overwrite(true)
                .with_filter(PathFilter::new().with_predicate(is_base_tensor));
            self.save_into(&mut store)
                .map_err(|e| checkpoint_error(tmp, e))
        })?;
        self.save_adapter_if_any(dir)
    }

    fn save_adapter_if_any(&self, dir: &Path) -> Result<()> {
        match self.lora() {
            Some(_) => self.save_adapter(dir),
            None => Ok(()),
        }
    }

    fn write_config(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|source| PolicyError::Write {
            path: dir.to_owned(),
            source,
        })?;
        let text = serde_json::to_string_pretty(self.config()).expect("a config serializes");
        grpo_base::replace(&dir.join(CONFIG), |tmp| {
            std::fs::write(tmp, &text).map_err(|source| PolicyError::Write {
                path: tmp.to_owned(),
                source,
            })
        })
    }
}

/// A base weight, not a LoRA factor (burn names those `<weight>.lora.a` / `.lora.b`): the
/// factors are saved once, in PEFT's file.
fn is_base_tensor(path: &str, _container: &str) -> bool {
    !path.contains(".lora.")
}

fn checkpoint_error(path: &Path, error: impl std::fmt::Display) -> PolicyError {
    PolicyError::Checkpoint {
        path: path.to_owned(),
        message: error.to_string(),
    }
}

/// The safetensors files of a directory: `model.safetensors`, or the shards its index names.
fn safetensors_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let single = dir.join(SAFETENSORS);
    if single.exists() {
        return Ok(vec![single]);
    }
    let index = dir.join(SAFETENSORS_INDEX);
    if !index.exists() {
        return Err(PolicyError::InvalidFile {
            path: dir.to_owned(),
            message: format!(
                "no {SAFETENSORS}, {SAFETENSORS_INDEX} or {BURNPACK} in this directory"
            ),
        });
    }
    #[derive(serde::Deserialize)]
    struct Index {
        weight_map: BTreeMap<String, String>,
    }
    let text = std::fs::read_to_string(&index).map_err(|source| PolicyError::Read {
        path: index.clone(),
        source,
    })?;
    let parsed: Index = serde_json::from_str(&text).map_err(|e| PolicyError::InvalidFile {
        path: index.clone(),
        message: e.to_string(),
    })?;
    let files: BTreeSet<&String> = parsed.weight_map.values().collect();
    Ok(files.into_iter().map(|file| dir.join(file)).collect())
}

/// The tensor table of a safetensors file, checked against the file's size (a truncated
/// download is named here, not found later as garbage weights).
fn read_header(path: &Path) -> Result<BTreeMap<String, HeaderEntry>> {
    let invalid = |message: String| PolicyError::InvalidFile {
        path: path.to_owned(),
        message,
    };
    let mut file = std::fs::File::open(path).map_err(|source| PolicyError::Read {
        path: path.to_owned(),
        source,
    })?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut length = [0u8; 8];
    file.read_exact(&mut length)
        .map_err(|_| invalid("truncated: shorter than a safetensors header".into()))?;
    let length = u64::from_le_bytes(length);
    if length > 100 << 20 || 8 + length > size {
        return Err(invalid(format!(
            "truncated or not safetensors: header of {length} bytes in a {size}-byte file"
        )));
    }
    let mut header = vec![0u8; length as usize];
    file.read_exact(&mut header)
        .map_err(|e| invalid(format!("cannot read the header: {e}")))?;
    let mut table: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&header).map_err(|e| invalid(format!("bad header: {e}")))?;
    table.remove("__metadata__");
    let data_size = size - 8 - length;
    let mut entries = BTreeMap::new();
    for (name, value) in table {
        let entry: HeaderEntry =
            serde_json::from_value(value).map_err(|e| invalid(format!("tensor `{name}`: {e}")))?;
        if entry.data_offsets[1] > data_size || entry.data_offsets[0] > entry.data_offsets[1] {
            return Err(invalid(format!(
                "truncated: tensor `{name}` needs bytes {}..{} of {data_size} data bytes",
                entry.data_offsets[0], entry.data_offsets[1]
            )));
        }
        if !matches!(entry.dtype.as_str(), "F32" | "F16" | "BF16") {
            return Err(invalid(format!(
                "tensor `{name}` has dtype {}; expected F32, F16 or BF16",
                entry.dtype
            )));
        }
        entries.insert(name, entry);
    }
    Ok(entries)
}
