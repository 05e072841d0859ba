//! `grpo worker` end to end: GRPO spread over two worker processes on 127.0.0.1 (burn's remote
//! backend over WebSocket) trains bitwise as the run on one worker does, and as the run on this
//! process's own flex device does to rounding (here SwiGLU, RMSNorm and the softmax are fused
//! kernels, which a remote device cannot run: it gets burn's composition); it resumes bitwise,
//! and fails — naming the device, never hanging — when a worker dies or was never there; the
//! run then resumes from its checkpoint on the worker left.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use grpo::policy::burn::module::Module;
use grpo::policy::burn::tensor::Device;
use grpo::policy::{ByteTokenizer, CausalLm};
use grpo::trainer::{GrpoConfig, GrpoTrainer, LossType, Metrics, TrainerError};

// The trainer's test helpers: a graded verifier, digit prompts, a tiny model, its weights.
#[path = "../crates/trainer/tests/common/mod.rs"]
mod common;
use common::{digit_prompts as prompts, graded_verifiers as verifiers, tiny_model, weights};

/// A `grpo worker` process serving flex on a port the OS picked; killed when dropped.
struct Worker {
    child: Child,
    address: String,
}

impl Worker {
    fn start() -> Worker {
        let mut child = Command::new(env!("CARGO_BIN_EXE_grpo"))
            .args(["worker", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        let address = first.rsplit(' ').next().unwrap().to_string();
        assert!(address.starts_with("ws://127.0.0.1:"), "{first}");
        // Whatever else it prints is drained, so the worker never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Worker { child, address }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

fn config(devices: &[&Worker]) -> GrpoConfig {
    GrpoConfig {
        prompts_per_step: 4,
        num_generations: 4,
        max_steps: 3,
        learning_rate: 2e-2,
        lr_scheduler_type: grpo::trainer::Schedule::Constant,
        max_completion_length: 3,
        beta: 0.04,
        loss_type: LossType::Dapo,
        seed: 5,
        save_steps: Some(1),
        // The same shards on one device and on two workers.
        update_shards: 2,
        sampling_shards: 2,
        devices: devices.iter().map(|w| w.address.clone()).collect(),
        ..Default::default()
    }
}

fn trainer(initial: &CausalLm, config: GrpoConfig, dir: Option<std::path::PathBuf>) -> GrpoTrainer {
    GrpoTrainer::new(
        initial.clone(),
        Arc::new(ByteTokenizer),
        verifiers(),
        prompts(),
        config,
        dir,
    )
    .unwrap()
}

fn resume(dir: std::path::PathBuf) -> GrpoTrainer {
    GrpoTrainer::resume(
        dir,
        Arc::new(ByteTokenizer),
        verifiers(),
        prompts(),
        &Device::flex(),
    )
    .unwrap()
}

/// Numbers that do not depend on the clock, as bits, step by step.
fn timeless(metrics: &[Metrics]) -> Vec<Vec<(String, u64)>> {
    metrics.iter().map(common::timeless).collect()
}

/// The local run's numbers are the workers' to rounding: the same completions and rewards,
/// the losses and gradients within 1e-4 (flex's fused kernels round differently from the
/// composition a remote device runs).
fn same_to_rounding(local: &[Metrics], remote: &[Metrics]) {
    assert_eq!(local.len(), remote.len());
    for (step, (a, b)) in local.iter().zip(remote).enumerate() {
        for key in ["completions/mean_length", "reward", "reward_std"] {
            assert_eq!(a[key], b[key], "step {}: {key}", step + 1);
        }
        for key in ["loss", "grad_norm", "entropy", "kl"] {
            let (a, b) = (a[key], b[key]);
            assert!(
                (a - b).abs() <= 1e-4 * b.abs().max(1e-3),
                "step {}: {key} {a} here, {b} on the workers",
                step + 1
            );
        }
    }
}

/// `job`'s result, or a failed test if it has not finished within `limit` (a hang).
fn within<T: Send + 'static>(limit: Duration, job: impl FnOnce() -> T + Send + 'static) -> T {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(job());
    });
    receiver
        .recv_timeout(limit)
        .expect("still running: the run hangs instead of failing")
}

#[test]
fn a_run_across_two_workers_trains_as_one_device_does_and_resumes_exactly() {
    let (first, second) = (Worker::start(), Worker::start());
    let initial = tiny_model(21);
    let dir = tempfile::tempdir().unwrap();

    // GRPO's per-sequence loss first, then DAPO's token-level one (the run resumed below).
    let per_sequence = |devices: &[&Worker]| GrpoConfig {
        loss_type: LossType::Grpo,
        ..config(devices)
    };
    let mut one = trainer(&initial, per_sequence(&[&first]), None);
    let one_metrics = one.train().unwrap();
    let mut spread = trainer(&initial, per_sequence(&[&first, &second]), None);
    assert_eq!(timeless(&spread.train().unwrap()), timeless(&one_metrics));
    assert_eq!(
        weights(&spread.model().valid()),
        weights(&one.model().valid())
    );

    let mut one = trainer(&initial, config(&[&first]), None);
    let one_metrics = one.train().unwrap();
    let mut spread = trainer(
        &initial,
        config(&[&first, &second]),
        Some(dir.path().join("a")),
    );
    let spread_metrics = spread.train().unwrap();
    // Both workers run flex, as the one does, over the same shards: the same numbers.
    assert_eq!(timeless(&spread_metrics), timeless(&one_metrics));
    assert_eq!(
        weights(&spread.model().valid()),
        weights(&one.model().valid())
    );
    assert!(one_metrics[2]["kl"] > 0.0 && weights(&initial) != weights(&one.model().valid()));
    let mut local = trainer(&initial, config(&[]), None);
    same_to_rounding(&local.train().unwrap(), &one_metrics);

    // Interrupted after step 2, resumed on the devices its checkpoint names.
    let interrupted = dir.path().join("b");
    let mut run = trainer(
        &initial,
        config(&[&first, &second]),
        Some(interrupted.clone()),
    );
    run.train_steps(2).unwrap();
    drop(run);
    let mut resumed = resume(interrupted.clone());
    assert_eq!(resumed.step(), 2);
    let last = resumed.train().unwrap();
    assert_eq!(timeless(&last), timeless(&spread_metrics[2..]));
    assert_eq!(
        weights(&resumed.model().valid()),
        weights(&spread.model().valid())
    );
}

#[test]
fn a_worker_that_dies_fails_the_step_naming_it_and_the_run_resumes_on_the_other() {
    let (first, mut second) = (Worker::start(), Worker::start());
    let initial = tiny_model(21);
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");

    let mut one = trainer(&initial, config(&[&first]), None);
    let one_metrics = one.train().unwrap();

    let mut run = trainer(&initial, config(&[&first, &second]), Some(run_dir.clone()));
    run.train_steps(1).unwrap();
    second.kill();
    let dead = second.address.clone();
    let error = within(Duration::from_secs(120), move || {
        run.train_steps(1).map(|_| ()).unwrap_err().to_string()
    });
    eprintln!("the step failed with: {error}");
    assert!(error.contains(&format!("`{dead}`")), "{error}");

    // The checkpoint of step 1, continued on the worker left (the same shards, so the same
    // numbers as the run that was on that worker alone from the start).
    let mut resumed = resume(run_dir).with_devices(vec![first.address.clone()]);
    assert_eq!(resumed.step(), 1);
    let rest = resumed.train().unwrap();
    assert_eq!(timeless(&rest), timeless(&one_metrics[1..]));
}

#[test]
fn a_worker_nobody_serves_is_an_error_naming_it_once_the_retries_run_out() {
    // A port just freed: every dial is refused (burn's connection retries run ~16 s).
    let address = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("ws://{}", listener.local_addr().unwrap())
    };
    let initial = tiny_model(21);
    let config = GrpoConfig {
        devices: vec![address.clone()],
        ..config(&[])
    };
    let error = within(Duration::from_secs(120), move || {
        trainer(&initial, config, None).train().unwrap_err()
    });
    assert!(
        matches!(&error, TrainerError::Policy(_)) && error.to_string().contains(&address),
        "{error}"
    );
}

/// A worker that is alive but never answers (stopped with SIGSTOP: its socket open, nothing
/// read) ends the run after `device_timeout_s` with an error naming it. The run is this test
/// again, as a child process, since the watchdog ends the process it is in.
#[test]
fn a_worker_that_never_answers_ends_the_run_naming_it_after_its_timeout() {
    const CHILD: &str = "GRPO_TEST_SILENT_WORKER";
    if let Ok(address) = std::env::var(CHILD) {
        let config = GrpoConfig {
            devices: vec![address],
            device_timeout_s: 3,
            ..config(&[])
        };
        let outcome = trainer(&tiny_model(21), config, None).train();
        panic!("the run returned instead of ending the process: {outcome:?}");
    }
    let worker = Worker::start();
    let stopped = Command::new("kill")
        .args(["-STOP", &worker.child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let address = worker.address.clone();
    let output = within(Duration::from_secs(120), move || {
        Command::new(std::env::current_exe().unwrap())
            .args([
                "a_worker_that_never_answers_ends_the_run_naming_it_after_its_timeout",
                "--exact",
                "--nocapture",
            ])
            .env(CHILD, &address)
            .output()
            .unwrap()
    });
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!("device `{}`: no answer for 3 s", worker.address)),
        "{stderr}"
    );
}
