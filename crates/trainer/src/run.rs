//! What a GRPO run and an SFT run share: the model and its optimiser on the autodiff device, the
//! data order, the step count, and the run directory with its metrics log and checkpoints.
//! Starting, resuming, logging, saving and the progress-bar loop are written once, here.

use std::path::PathBuf;

use grpo_data::Epochs;
use grpo_policy::LanguageModel;
use grpo_policy::burn::optim::GradientsParams;
use grpo_policy::burn::tensor::Device;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::checkpoint::{self, State};
use crate::error::{Result, TrainerError};
use crate::metrics::{JsonlLog, Metrics};
use crate::optim::{OptimSettings, Optimizer, StepReport, number_parameters};
use crate::progress::Progress;
use crate::shards::{connect, training_device};
use crate::watchdog::Watchdog;

/// The settings of a kind of run, as the shared core needs them.
pub(crate) trait RunSettings: Clone + Serialize + DeserializeOwned {
    /// The run's name in checkpoints (`trainer_state.json`'s `kind`) and on the progress bar.
    const KIND: &'static str;
    fn optim(&self) -> OptimSettings;
    fn seed(&self) -> u64;
    fn max_steps(&self) -> usize;
    fn save_steps(&self) -> Option<usize>;
    fn save_total_limit(&self) -> Option<usize>;
    fn gradient_checkpointing(&self) -> bool;
    /// The devices each step is spread over, by name (none: the model's own).
    fn devices(&self) -> &[String];
    /// With workers: the silence after which a step ends the process (0: never).
    fn device_timeout_s(&self) -> u64;
    fn set_devices(&mut self, devices: Vec<String>);
}

pub(crate) struct RunCore<M, C> {
    pub config: C,
    pub model: M,
    pub optimizer: Optimizer,
    pub epochs: Epochs,
    /// Training steps done.
    pub step: usize,
    pub run_dir: Option<PathBuf>,
    pub metrics_log: Option<JsonlLog>,
    /// The autodiff device the model lives on.
    pub device: Device,
    /// `config.devices()`, connected at the first step that needs them — so a run resumed
    /// after a worker died can be given fewer before it dials the dead one.
    connected: Option<Vec<(String, Device)>>,
    /// Armed during a step that has workers.
    pub watchdog: Option<Watchdog>,
}

impl<M: LanguageModel, C: RunSettings> RunCore<M, C> {
    /// A new run from `model`, moved onto its device's autodiff counterpart, over `rows` rows.
    pub fn start(model: M, config: C, rows: usize, run_dir: Option<PathBuf>) -> Result<Self> {
        let device = training_device(&model.device(), config.gradient_checkpointing());
        let model = number_parameters(model.fork(&device).train());
        let epochs = Epochs::new(rows, config.seed(), true)?;
        let optimizer = Optimizer::new(config.optim());
        RunCore::assemble(config, model, optimizer, epochs, 0, run_dir)
    }

    /// The run in `run_dir` at its newest checkpoint, on `device`, and the reference model
    /// the checkpoint holds, if any.
    pub fn resume(run_dir: PathBuf, rows: usize, device: &Device) -> Result<(Self, Option<M>)> {
        let dir = checkpoint::newest(&run_dir)?;
        // The config is read as JSON first: another trainer's config would not parse as `C`,
        // and its kind says why better than the parse error would.
        let state = checkpoint::read_state::<State<serde_json::Value>>(&dir)?;
        let fail = |message: String| TrainerError::Checkpoint {
            path: dir.clone(),
            message,
        };
        if state.kind != C::KIND {
            return Err(fail(format!(
                "written by the `{}` trainer, not the `{}` one",
                state.kind,
                C::KIND
            )));
        }
        let config: C = serde_json::from_value(state.config).map_err(|e| fail(e.to_string()))?;
        let loaded = checkpoint::load::<M>(
            &dir,
            &training_device(device, config.gradient_checkpointing()),
            Optimizer::new(config.optim()),
        )?;
        let epochs = Epochs::resume(rows, config.seed(), true, state.cursor)?;
        let core = RunCore::assemble(
            config,
            loaded.model,
            loaded.optimizer,
            epochs,
            state.step,
            Some(run_dir),
        )?;
        Ok((core, loaded.reference))
    }

    fn assemble(
        config: C,
        model: M,
        optimizer: Optimizer,
        epochs: Epochs,
        step: usize,
        run_dir: Option<PathBuf>,
    ) -> Result<Self> {
        crate::keep_freed_memory();
        let metrics_log = match &run_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| TrainerError::io(dir, e))?;
                Some(JsonlLog::open(&dir.join("metrics.jsonl"), Some(step))?)
            }
            None => None,
        };
        let device = model.device();
        Ok(RunCore {
            config,
            model,
            optimizer,
            epochs,
            step,
            run_dir,
            metrics_log,
            device,
            connected: None,
            watchdog: None,
        })
    }

    /// Spreads the steps from now on over `devices` (by name), connected at the next step;
    /// checkpoints record them.
    pub fn set_devices(&mut self, devices: Vec<String>) {
        self.config.set_devices(devices);
        self.connected = None;
    }

    /// The devices each step's shards run on (data parallel), with their names: connected the
    /// first time.
    pub fn devices(&mut self) -> Result<Vec<(String, Device)>> {
        if self.connected.is_none() {
            self.connected = Some(connect(self.config.devices(), &self.device)?);
        }
        Ok(self.connected.clone().expect("connected above"))
    }

    /// Arms the watchdog for a step (when the run has workers); the caller sets `watchdog`
    /// back to `None` however the step ends.
    pub fn arm_watchdog(&mut self) {
        self.watchdog = Watchdog::start(self.config.devices(), self.config.device_timeout_s());
    }

    /// Work came back from the devices: the watchdog's silence starts again.
    pub fn heard(&self) {
        if let Some(watchdog) = &self.watchdog {
            watchdog.heard();
        }
    }

    /// One optimiser step of the model with `grads` at `lr`.
    pub fn optimizer_step(&mut self, grads: GradientsParams, lr: f64) -> StepReport {
        let (model, report) = self.optimizer.step(self.model.clone(), grads, lr);
        self.model = model;
        report
    }

    /// Whether this step is the run's last.
    pub fn is_last_step(&self) -> bool {
        self.step == self.config.max_steps()
    }

    /// Appends the step's metrics to the run's log (if it has a directory), then checkpoints
    /// when `save_steps` says so or the run is done.
    pub fn log_and_checkpoint(&mut self, metrics: &Metrics, reference: Option<&M>) -> Result<()> {
        if let Some(log) = &mut self.metrics_log {
            log.write(metrics)?;
        }
        let due = self
            .config
            .save_steps()
            .is_some_and(|n| self.step.is_multiple_of(n));
        if self.run_dir.is_some() && (due || self.is_last_step()) {
            self.save_checkpoint(reference)?;
        }
        Ok(())
    }

    /// Writes a checkpoint of the current step into the run directory.
    pub fn save_checkpoint(&self, reference: Option<&M>) -> Result<PathBuf> {
        let run_dir = self
            .run_dir
            .as_deref()
            .ok_or_else(|| TrainerError::config("run_dir", "a checkpoint needs a run directory"))?;
        let state = State {
            kind: C::KIND.into(),
            step: self.step,
            cursor: self.epochs.cursor(),
            config: self.config.clone(),
        };
        checkpoint::save(
            run_dir,
            self.step,
            &self.model,
            reference,
            &self.optimizer,
            &state,
            self.config.save_total_limit(),
        )
    }
}

/// Calls `step` (one training step each call) from step `done` until `until` or the run's
/// `max_steps`, whichever comes first, behind a progress bar; returns each step's metrics.
pub(crate) fn run_steps(
    kind: &str,
    max_steps: usize,
    done: usize,
    until: usize,
    mut step: impl FnMut(&Progress) -> Result<Metrics>,
) -> Result<Vec<Metrics>> {
    let progress = Progress::new(kind, max_steps, done);
    let mut all = Vec::new();
    for at in done..max_steps.min(until) {
        let metrics = step(&progress)?;
        progress.update(at + 1, &metrics);
        all.push(metrics);
    }
    progress.finish();
    Ok(all)
}
