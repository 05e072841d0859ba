//! Splitting a step's work over threads and devices: burn's CPU backends run most element-wise
//! operations on one thread, so independent parts of a batch — each with its own autodiff
//! graph — run side by side; with several devices (data parallel), part `i` runs on device
//! `i % devices` and its gradients come back to the model's device.

use grpo_policy::burn::module::Module;
use grpo_policy::burn::optim::{GradientsAccumulator, GradientsParams};
use grpo_policy::burn::tensor::Device;
use grpo_policy::{LanguageModel, device_by_name};
use grpo_sampler::SamplerError;

use crate::error::{Result, TrainerError};

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Shards a `setting` asks for: itself, or two per core for 0 (a shard's matrix products run
/// on burn's thread pool while the others' single-threaded element-wise operations go on).
pub(crate) fn update_shards(setting: usize) -> usize {
    match setting {
        0 => 2 * cores(),
        n => n,
    }
}

/// The autodiff counterpart of `device` a run trains on: with `checkpointing`, burn's balanced
/// gradient checkpointing (memory-bound activations recomputed in the backward).
pub(crate) fn training_device(device: &Device, checkpointing: bool) -> Device {
    let device = device.clone().inner().autodiff();
    if checkpointing {
        device.gradient_checkpointing()
    } else {
        device
    }
}

/// The devices `names` mean, each with its name; no names: the model's own device (`main`,
/// autodiff) alone. A worker is dialled here.
pub(crate) fn connect(names: &[String], main: &Device) -> Result<Vec<(String, Device)>> {
    if names.is_empty() {
        return Ok(vec![(
            "the model's device".to_string(),
            main.clone().inner(),
        )]);
    }
    names
        .iter()
        .map(|name| Ok((name.clone(), device_by_name(name)?)))
        .collect()
}

/// Checks a config's `devices` as they are written (without connecting), naming the field.
pub(crate) fn check_device_names(names: &[String]) -> Result<()> {
    for name in names {
        grpo_policy::check_device_name(name)
            .map_err(|message| TrainerError::config("devices", format!("`{name}` {message}")))?;
    }
    Ok(())
}

/// The autodiff device shard work on `device` trains on: the run's own (`main`) when `device`
/// is its inner device, else `device`'s counterpart.
pub(crate) fn autodiff_on(main: &Device, device: &Device, checkpointing: bool) -> Device {
    if device == &main.clone().inner() {
        main.clone()
    } else {
        training_device(device, checkpointing)
    }
}

/// `model` (on the run's autodiff device `main`) as shard work on `device` needs it: itself on
/// the model's own device, else its `fork` there (the weights copied over; parameters keep
/// their ids, so the gradients map back onto the model's).
pub(crate) fn replica<M: Module>(
    model: &M,
    main: &Device,
    device: &Device,
    checkpointing: bool,
) -> M {
    if device == &main.clone().inner() {
        model.clone()
    } else {
        model
            .clone()
            .fork(&autodiff_on(main, device, checkpointing))
    }
}

/// A frozen (non-autodiff) model's copy on `device`.
pub(crate) fn frozen_replica<M: LanguageModel>(model: &M, device: &Device) -> M {
    if &model.device() == device {
        model.clone()
    } else {
        model.clone().to_device(device)
    }
}

/// The step's gradients on the model's device `main`: each device's sum (`accumulators`, one
/// per device of `devices`) moved home — gradients, like every autodiff result, are plain
/// tensors of the inner device — and added in device order (burn-train's multi-device
/// pattern). With one device, its sum as it is.
pub(crate) fn sum_at_home<M: Module>(
    accumulators: Vec<GradientsAccumulator<M>>,
    model: &M,
    main: &Device,
    devices: &[(String, Device)],
) -> GradientsParams {
    let home = main.clone().inner();
    let mut total = GradientsAccumulator::<M>::new();
    for (mut accumulator, (_, device)) in accumulators.into_iter().zip(devices) {
        let grads = accumulator.grads();
        total.accumulate(
            model,
            if device == &home {
                grads
            } else {
                grads.to_device(&home, model)
            },
        );
    }
    total.grads()
}

/// How many of `shards` (dealt out in turn to `devices`) run on shard `i`'s device.
pub(crate) fn shards_on(shards: usize, devices: usize, i: usize) -> usize {
    (i % devices..shards).step_by(devices).count()
}

/// The policy a shard back-propagates through: with other shards beside it, its own `fork`
/// (a separate autodiff graph, so the shards do not contend for one; parameters keep their
/// ids, so their gradients accumulate onto the policy's), alone the policy itself.
pub(crate) fn shard_model<M: Module>(model: &M, device: &Device, shards: usize) -> M {
    if shards == 1 {
        model.clone()
    } else {
        model.clone().fork(device)
    }
}

/// `job(index, item)` over `items`, one thread each (inline when there is one), results in item
/// order. A job that panics (a worker whose connection closed mid-step) is an error naming
/// `device_of(index)`.
pub(crate) fn in_parallel<I: Sync, T: Send>(
    items: &[I],
    device_of: impl Fn(usize) -> String,
    job: impl Fn(usize, &I) -> T + Sync,
) -> Result<Vec<T>> {
    let failed = |i: usize, payload: Box<dyn std::any::Any + Send>| TrainerError::Device {
        device: device_of(i),
        message: grpo_base::panic_message(payload.as_ref()),
    };
    if items.len() == 1 {
        return std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(0, &items[0])))
            .map(|t| vec![t])
            .map_err(|payload| failed(0, payload));
    }
    std::thread::scope(|scope| {
        let job = &job;
        let handles: Vec<_> = items
            .iter()
            .enumerate()
            .map(|(i, item)| scope.spawn(move || job(i, item)))
            .collect();
        handles
            .into_iter()
            .enumerate()
            .map(|(i, h)| h.join().map_err(|payload| failed(i, payload)))
            .collect()
    })
}

/// A sampler's failed shard as the error naming its device (`devices` as the sampler was given
/// their replicas); any other error as it is.
pub(crate) fn on_device(error: TrainerError, devices: &[(String, Device)]) -> TrainerError {
    match error {
        TrainerError::Sampler(SamplerError::ShardFailed { replica, message }) => {
            TrainerError::Device {
                device: devices[replica].0.clone(),
                message,
            }
        }
        other => other,
    }
}
