//! Checkpoints, shared by GRPO and SFT: `RUN/checkpoint-000120/` holds the model
//! (what its [`LanguageModel::save`] writes; `config.json` + `model.bpk` for `CausalLm`), the optimiser state (`optimizer.bpk`) and the trainer's state
//! (`trainer_state.json`: step, data cursor, config), and for a KL-regularised run the
//! reference model (`reference/`: it is the *initial* policy, which the run itself no longer
//! holds — except for a model with adapters, whose reference is its own frozen base and is not
//! saved twice). A checkpoint is written into a hidden
//! temporary directory and renamed into place, so a crash leaves the previous one intact.

use std::path::{Path, PathBuf};

use grpo_policy::LanguageModel;
use grpo_policy::burn::tensor::Device;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Result, TrainerError};
use crate::optim::{Optimizer, number_parameters};

const PREFIX: &str = "checkpoint-";
const STATE: &str = "trainer_state.json";
const OPTIMIZER: &str = "optimizer.bpk";
const REFERENCE: &str = "reference";

/// Writes checkpoint `step` under `run_dir` and keeps only the newest `keep` checkpoints.
pub fn save<M: LanguageModel>(
    run_dir: &Path,
    step: usize,
    model: &M,
    reference: Option<&M>,
    optimizer: &Optimizer,
    state: &impl Serialize,
    keep: Option<usize>,
) -> Result<PathBuf> {
    let target = run_dir.join(format!("{PREFIX}{step:06}"));
    let fail = |message: String| TrainerError::Checkpoint {
        path: target.clone(),
        message,
    };
    grpo_base::replace(&target, |temp| {
        std::fs::create_dir_all(temp).map_err(|e| TrainerError::io(temp, e))?;
        model.save(temp)?;
        if let Some(reference) = reference {
            reference.save(&temp.join(REFERENCE))?;
        }
        optimizer.save(&temp.join(OPTIMIZER)).map_err(fail)?;
        let json = serde_json::to_string_pretty(state).expect("state serializes");
        std::fs::write(temp.join(STATE), json).map_err(|e| TrainerError::io(temp, e))
    })?;
    if let Some(keep) = keep {
        let all = list(run_dir)?;
        for (_, old) in all.iter().take(all.len().saturating_sub(keep)) {
            std::fs::remove_dir_all(old).map_err(|e| TrainerError::io(old, e))?;
        }
    }
    Ok(target)
}

/// The checkpoints under `run_dir`, oldest first.
pub fn list(run_dir: &Path) -> Result<Vec<(usize, PathBuf)>> {
    let mut found = Vec::new();
    let entries = match std::fs::read_dir(run_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(TrainerError::io(run_dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| TrainerError::io(run_dir, e))?;
        let name = entry.file_name();
        if let Some(step) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|s| s.parse::<usize>().ok())
        {
            found.push((step, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

/// What a checkpoint remembers besides weights and optimiser state: which trainer wrote it,
/// the step, the data cursor (the sampler's seed is a function of the step, so this is all the
/// randomness there is) and the config.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct State<C> {
    pub kind: String,
    pub step: usize,
    pub cursor: grpo_data::Cursor,
    pub config: C,
}

/// The newest checkpoint under `run_dir`, or an error saying there is none.
pub fn newest(run_dir: &Path) -> Result<PathBuf> {
    latest(run_dir)?.ok_or_else(|| TrainerError::Checkpoint {
        path: run_dir.to_owned(),
        message: "no checkpoint to resume from".into(),
    })
}

/// The newest checkpoint under `run_dir`, if any.
pub fn latest(run_dir: &Path) -> Result<Option<PathBuf>> {
    Ok(list(run_dir)?.pop().map(|(_, path)| path))
}

/// What [`load`] returns.
pub struct Loaded<M> {
    pub model: M,
    /// On the plain (non-autodiff) device, when the checkpoint has one.
    pub reference: Option<M>,
    pub optimizer: Optimizer,
}

/// Loads a checkpoint's tensors: the model on `device` (parameters numbered for the
/// optimiser), the reference model if saved, and the optimiser state into `optimizer` (the
/// trainer state is [`read_state`]'s, read first to build that optimiser).
pub fn load<M: LanguageModel>(
    dir: &Path,
    device: &Device,
    optimizer: Optimizer,
) -> Result<Loaded<M>> {
    let fail = |message: String| TrainerError::Checkpoint {
        path: dir.to_owned(),
        message,
    };
    let model = number_parameters(M::load(dir, device)?.train());
    let optimizer = optimizer.load(&dir.join(OPTIMIZER)).map_err(fail)?;
    let reference = dir.join(REFERENCE);
    let reference = if reference.exists() {
        Some(M::load(&reference, &device.clone().inner())?)
    } else {
        None
    };
    Ok(Loaded {
        model,
        reference,
        optimizer,
    })
}

/// The trainer state of a checkpoint alone (to learn its config before loading the rest).
pub fn read_state<S: DeserializeOwned>(dir: &Path) -> Result<S> {
    let path = dir.join(STATE);
    let text = std::fs::read_to_string(&path).map_err(|e| TrainerError::io(&path, e))?;
    serde_json::from_str(&text).map_err(|e| TrainerError::Checkpoint {
        path: path.clone(),
        message: e.to_string(),
    })
}
