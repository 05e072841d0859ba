//! The loop end to end on a tiny from-scratch model: it learns, it resumes exactly, and a
//! non-finite value skips the update without touching the weights.

use std::sync::Arc;

use grpo_data::{Dataset, Row};
use grpo_policy::burn::module::{Module, ModuleVisitor, Param};
use grpo_policy::burn::tensor::{DType, Device, FloatDType, Tensor};
use grpo_policy::{ByteTokenizer, CausalLm, LoraConfig};
use grpo_trainer::{GrpoConfig, GrpoTrainer, LossType, Metrics, SftConfig, SftTrainer};
use grpo_verifiers::{Member, Sample, Score, Verifier, VerifierSet, VerifyError};

mod common;
use common::{
    SaysSeven, apart_relative_to_update, digit_prompts, graded_verifiers, timeless, tiny_model,
    verifiers, weights,
};

fn prompts() -> Dataset {
    digit_prompts()
}

fn config() -> GrpoConfig {
    GrpoConfig {
        prompts_per_step: 4,
        num_generations: 8,
        micro_batch_size: 16,
        max_steps: 60,
        learning_rate: 2e-2,
        lr_scheduler_type: grpo_trainer::Schedule::Constant,
        max_completion_length: 2,
        seed: 7,
        log_completions: 2,
        ..Default::default()
    }
}

fn trainer(config: GrpoConfig, run_dir: Option<std::path::PathBuf>) -> GrpoTrainer {
    trainer_from(tiny_model(1), config, run_dir)
}

fn trainer_from(
    model: CausalLm,
    config: GrpoConfig,
    run_dir: Option<std::path::PathBuf>,
) -> GrpoTrainer {
    trainer_scored_by(model, verifiers(), config, run_dir)
}

fn trainer_scored_by(
    model: CausalLm,
    verifiers: VerifierSet,
    config: GrpoConfig,
    run_dir: Option<std::path::PathBuf>,
) -> GrpoTrainer {
    GrpoTrainer::new(
        model,
        Arc::new(ByteTokenizer),
        verifiers,
        prompts(),
        config,
        run_dir,
    )
    .unwrap()
}

#[test]
fn a_tiny_model_learns_to_say_seven() {
    let config = GrpoConfig {
        eval_steps: Some(30),
        eval_num_samples: 4,
        eval_k: 2,
        ..config()
    };
    let held_out = vec![
        Row::from_prompt("Tell me a digit:"),
        Row::from_prompt("Number please:"),
    ];
    let mut trainer = trainer(config, None).with_eval_set("unseen", held_out);
    let metrics = trainer.train().unwrap();
    // Evaluated at step 30 and at the end (step 60), into the same metrics.
    assert!(
        metrics[29].contains_key("eval/unseen/pass@1")
            && !metrics[30].contains_key("eval/unseen/pass@1")
    );
    let last = metrics.last().unwrap();
    assert_eq!(
        last["eval/unseen/pass@1"], 1.0,
        "greedy answers on unseen prompts"
    );
    assert!(last["eval/unseen/pass@2"] >= 0.9 && last["eval/unseen/reward"] == 1.0);
    let rewards: Vec<f64> = metrics.iter().map(|m| m["reward"]).collect();
    eprintln!("rewards: {rewards:.2?}");
    assert!(rewards[0] < 0.2, "chance is 1/259, got {}", rewards[0]);
    let last: f64 = rewards[rewards.len() - 3..].iter().sum::<f64>() / 3.0;
    assert!(last >= 0.9, "reward of the last steps {last}");
}

fn read_metrics(path: &std::path::Path) -> Vec<Metrics> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let value: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(l).unwrap();
            value
                .into_iter()
                .map(|(k, v)| (k, v.as_f64().unwrap_or(f64::NAN)))
                .collect()
        })
        .collect()
}

#[test]
fn a_resumed_run_repeats_the_uninterrupted_one_exactly() {
    // One initial model for both runs: the device's seeded generator is shared with tests
    // running in parallel, so two `tiny_model(1)` calls need not agree.
    let dir = resumed_run_repeats_the_uninterrupted_one(tiny_model(1));
    // The reference (the initial model) travels with each checkpoint.
    assert!(
        dir.path()
            .join("interrupted/checkpoint-000006/reference")
            .exists()
    );
}

#[test]
fn a_resumed_lora_run_repeats_the_uninterrupted_one_exactly() {
    let dir = resumed_run_repeats_the_uninterrupted_one(lora_model());
    // The reference is the policy's base: checkpoints hold no copy of it, but the adapter.
    let checkpoint = dir.path().join("interrupted/checkpoint-000006");
    assert!(!checkpoint.join("reference").exists());
    assert!(checkpoint.join("adapter_model.safetensors").exists());
}

#[test]
fn a_resumed_lora_run_on_a_bf16_base_repeats_the_uninterrupted_one_exactly() {
    let model = lora_model().with_base_dtype(FloatDType::BF16).unwrap();
    let dir = resumed_run_repeats_the_uninterrupted_one(model);
    // The checkpoint holds the base as it was trained on: bf16.
    let checkpoint = dir.path().join("interrupted/checkpoint-000006");
    let saved = CausalLm::load(&checkpoint, &Device::flex()).unwrap();
    assert_eq!(saved.base_dtype(), DType::BF16);
    assert!(saved.lora().is_some());
}

fn lora_model() -> CausalLm {
    let lora = LoraConfig::new(4, 8.0, &["q_proj", "v_proj", "down_proj"]);
    tiny_model(1).with_lora(&lora).unwrap()
}

/// Runs 6 steps straight, and 4 steps (checkpoint at 3) then a resume from step 3, from the
/// same `initial` model; asserts their metrics agree bitwise. Returns the runs' directory.
fn resumed_run_repeats_the_uninterrupted_one(initial: CausalLm) -> tempfile::TempDir {
    // KL to the reference and μ = 2 make the checkpoint carry everything there is.
    let config = GrpoConfig {
        max_steps: 6,
        save_steps: Some(3),
        beta: 0.04,
        num_iterations: 2,
        loss_type: LossType::Grpo,
        ..config()
    };
    let dir = tempfile::tempdir().unwrap();
    let (straight, interrupted) = (dir.path().join("straight"), dir.path().join("interrupted"));
    trainer_scored_by(
        initial.clone(),
        graded_verifiers(),
        config.clone(),
        Some(straight.clone()),
    )
    .train()
    .unwrap();

    let mut first = trainer_scored_by(
        initial,
        graded_verifiers(),
        config.clone(),
        Some(interrupted.clone()),
    );
    first.train_steps(4).unwrap(); // a checkpoint at 3, then one step that is lost
    drop(first);
    let mut resumed: GrpoTrainer = GrpoTrainer::resume(
        interrupted.clone(),
        Arc::new(ByteTokenizer),
        graded_verifiers(),
        prompts(),
        &Device::flex(),
    )
    .unwrap();
    assert_eq!(resumed.step(), 3);
    resumed.train().unwrap();

    let a = read_metrics(&straight.join("metrics.jsonl"));
    let b = read_metrics(&interrupted.join("metrics.jsonl"));
    assert_eq!(a.len(), 6);
    assert_eq!(b.len(), 6, "the lost step's line is dropped on resume");
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(timeless(x), timeless(y), "step {}", x["step"]);
    }
    // Something moved, so the comparison means something.
    assert!(a.iter().any(|m| m["kl"] > 0.0));
    let completions = std::fs::read_to_string(interrupted.join("completions.jsonl")).unwrap();
    assert_eq!(completions.lines().count(), 12);
    dir
}

#[test]
fn lora_trains_only_the_adapters_and_its_reference_is_the_base() {
    let config = GrpoConfig {
        max_steps: 4,
        beta: 0.04,
        ..config()
    };
    let initial = lora_model();
    // With the base held in bf16 too: it stays bf16 and bitwise frozen, the adapters f32.
    for dtype in [FloatDType::BF16, FloatDType::F32] {
        let model = initial.clone().with_base_dtype(dtype).unwrap();
        let before = weights_by_kind(&model);
        let mut trainer = trainer_scored_by(model, graded_verifiers(), config.clone(), None);
        let metrics = trainer.train().unwrap();
        let trained = trainer.model().valid();
        assert_eq!(trained.base_dtype(), DType::from(dtype));
        let after = weights_by_kind(&trained);
        assert_eq!(
            before.0, after.0,
            "{dtype:?}: every base tensor is frozen, bitwise"
        );
        assert_eq!(before.1.len(), 2 * 3, "A and B of three projections");
        assert_ne!(before.1, after.1, "{dtype:?}: the adapters trained");
        assert!(
            after.2.iter().all(|&d| d == DType::F32),
            "{dtype:?}: adapters stay f32"
        );
        // Step 1 samples from and scores against the same weights: adapter B is zero, so the
        // policy is its base and the KL to the reference (the base) is exactly 0; then it
        // moves.
        assert_eq!(metrics[0]["kl"], 0.0, "{dtype:?}");
        assert!(
            metrics.iter().any(|m| m["kl"] > 0.0),
            "{dtype:?}: the policy never moved"
        );
        if dtype == FloatDType::BF16 {
            continue;
        }
        // For the cross-check against peft (crates/policy/scripts/make_lora_fixtures.py
        // --check): the base as a Hugging Face directory, the trained adapter beside it, and
        // our logits.
        if let Some(dir) = std::env::var_os("GRPO_EXPORT_ADAPTER") {
            export_for_peft(&trained, std::path::Path::new(&dir));
        }
    }
}

fn export_for_peft(model: &CausalLm, dir: &std::path::Path) {
    use grpo_policy::LanguageModel;
    model.save_safetensors(dir).unwrap();
    let device = Device::flex();
    let cases: Vec<serde_json::Value> = [vec![83u32, 97, 121, 58], vec![71, 111, 58, 32, 55]]
        .into_iter()
        .map(|ids| {
            let tokens = Tensor::<2, grpo_policy::burn::tensor::Int>::from_data(
                grpo_policy::burn::tensor::TensorData::new(
                    ids.iter().map(|&i| i as i64).collect::<Vec<_>>(),
                    [1, ids.len()],
                ),
                &device,
            );
            let logits = model.forward(tokens, &mut model.new_cache(vec![0])); // [1, seq, vocab]
            let [_, seq, vocab] = logits.dims();
            let values = logits.into_data().try_to_vec::<f32>().unwrap();
            let rows: Vec<&[f32]> = (0..seq)
                .map(|t| &values[t * vocab..(t + 1) * vocab])
                .collect();
            serde_json::json!({"ids": ids, "logits": rows})
        })
        .collect();
    let json = serde_json::json!({ "cases": cases }).to_string();
    std::fs::write(dir.join("grpo_logits.json"), json).unwrap();
}

/// (base tensors, LoRA factors, the factors' dtypes) of a model, each in visiting order.
type WeightsByKind = (Vec<Vec<f32>>, Vec<Vec<f32>>, Vec<DType>);

fn weights_by_kind(model: &CausalLm) -> WeightsByKind {
    #[derive(Default)]
    struct Collect {
        path: Vec<String>,
        found: WeightsByKind,
    }
    impl ModuleVisitor for Collect {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let dtype = param.val().dtype();
            let values = param
                .val()
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .unwrap();
            match self.path.iter().any(|p| p == "lora") {
                true => {
                    self.found.1.push(values);
                    self.found.2.push(dtype);
                }
                false => self.found.0.push(values),
            }
        }
    }
    let mut collect = Collect::default();
    model.visit(&mut collect);
    collect.found
}

#[test]
fn a_non_finite_advantage_skips_the_update_and_leaves_the_weights() {
    let mut trainer = trainer(
        GrpoConfig {
            learning_rate: 1e-2,
            ..config()
        },
        None,
    );
    let (mut batch, _, _) = trainer.rollout().unwrap();
    // Make sure the batch has signal, so a normal update does move the weights.
    for (i, row) in batch.rows.iter_mut().enumerate() {
        row.advantage = if i % 2 == 0 { 1.0 } else { -1.0 };
    }
    let before = weights(trainer.model());
    let mut poisoned = batch.clone();
    poisoned.rows[3].advantage = f32::NAN;
    let metrics = trainer.update(&poisoned).unwrap();
    assert_eq!(metrics["step_skipped"], 1.0);
    assert_eq!(
        weights(trainer.model()),
        before,
        "a skipped step changed the weights"
    );

    let mut infinite = batch.clone();
    infinite.rows[0].advantage = f32::INFINITY;
    assert_eq!(trainer.update(&infinite).unwrap()["step_skipped"], 1.0);
    assert_eq!(weights(trainer.model()), before);

    let metrics = trainer.update(&batch).unwrap();
    assert_eq!(metrics["step_skipped"], 0.0);
    assert_ne!(
        weights(trainer.model()),
        before,
        "a normal step must move the weights"
    );
}

#[test]
fn sft_teaches_the_answer_and_resumes() {
    let rows: Vec<Row> = (0..8)
        .map(|i| Row::from_prompt(format!("{i}+1=")).with("answer", (i + 1).to_string()))
        .collect();
    let config = SftConfig {
        batch_size: 8,
        max_steps: 60,
        learning_rate: 1e-2,
        save_steps: Some(30),
        ..Default::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let mut sft = SftTrainer::new(
        tiny_model(2),
        Arc::new(ByteTokenizer),
        Dataset::from_rows(rows.clone()),
        config,
        Some(dir.path().to_owned()),
    )
    .unwrap();
    let metrics = sft.train().unwrap();
    let (first, last) = (metrics[0]["loss"], metrics.last().unwrap()["loss"]);
    eprintln!("sft loss {first:.3} → {last:.3}");
    assert!(first > 3.0 && last < 0.2, "{first} → {last}");
    let model = sft.into_model();
    let tokenizer = ByteTokenizer;
    let sampled = grpo_sampler::Sampler::default()
        .sample(
            &model,
            &tokenizer,
            &["3+1=".into()],
            &grpo_sampler::SamplingConfig {
                num_generations: 1,
                temperature: 0.0,
                max_new_tokens: 4,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(sampled.completions[0].text, "4");
    // The run's newest checkpoint resumes at its step.
    let resumed: SftTrainer = SftTrainer::resume(
        dir.path().to_owned(),
        Arc::new(ByteTokenizer),
        Dataset::from_rows(rows.clone()),
        &Device::flex(),
    )
    .unwrap();
    assert_eq!(resumed.step(), 60);
    // A GRPO trainer refuses the SFT run's checkpoint, naming both kinds.
    let error = GrpoTrainer::<CausalLm>::resume(
        dir.path().to_owned(),
        Arc::new(ByteTokenizer),
        VerifierSet::from_toml_str("[[verifiers]]\nkind = \"arithmetic\"\n", "V.toml").unwrap(),
        Dataset::from_rows(rows),
        &Device::flex(),
    )
    .err()
    .expect("an SFT checkpoint is not a GRPO one")
    .to_string();
    assert!(
        error.contains("written by the `sft` trainer, not the `grpo` one"),
        "{error}"
    );
}

#[test]
fn sft_targets_come_from_a_field_or_a_template() {
    let row = Row::from_prompt("p")
        .with("numbers", serde_json::json!([3, 4]))
        .with("solution", "3+4")
        .with("answer", 7);
    let plain = SftConfig {
        target_prefix: "= ".into(),
        ..Default::default()
    };
    assert_eq!(plain.target(&row).unwrap(), "= 7");
    let template = SftConfig {
        target_template: Some("<think>{numbers}</think><answer>{solution}</answer>".into()),
        ..Default::default()
    };
    assert_eq!(
        template.target(&row).unwrap(),
        "<think>[3,4]</think><answer>3+4</answer>"
    );
    let missing = SftConfig {
        target_field: "nope".into(),
        ..Default::default()
    };
    assert!(
        missing
            .target(&row)
            .unwrap_err()
            .to_string()
            .contains("nope")
    );
}

#[test]
fn a_target_mix_teaches_each_row_one_template_in_its_share() {
    use grpo_trainer::MixedTarget;
    let mix = |weights: [f64; 2]| SftConfig {
        target_mix: vec![
            MixedTarget {
                template: "by hand {answer}".into(),
                weight: weights[0],
            },
            MixedTarget {
                template: "tool {answer}".into(),
                weight: weights[1],
            },
        ],
        ..Default::default()
    };
    let rows: Vec<Row> = (0..2000)
        .map(|i| Row::from_prompt(format!("What is {i}+1?")).with("answer", i + 1))
        .collect();
    let config = mix([4.0, 1.0]);
    config.validate().unwrap();
    let targets: Vec<String> = rows.iter().map(|r| config.target(r).unwrap()).collect();
    // The same row always gets the same template (a resumed run teaches the same).
    assert_eq!(targets[7], config.target(&rows[7]).unwrap());
    assert!(targets[7].ends_with(" 8"), "{}", targets[7]);
    // Shares by weight: 1/5 of 2000 = 400, binomial sd ≈ 18.
    let tool = targets.iter().filter(|t| t.starts_with("tool")).count();
    assert!(
        (330..=470).contains(&tool),
        "{tool} of 2000 rows drew the tool"
    );
    // Another seed, another draw per row, the same share.
    let other = SftConfig {
        seed: 1,
        ..config.clone()
    };
    let moved = rows
        .iter()
        .zip(&targets)
        .filter(|(r, t)| other.target(r).unwrap() != **t)
        .count();
    assert!(moved > 300, "{moved}");
    // Settings that cannot work, named.
    for (bad, field) in [
        (mix([1.0, 0.0]), "target_mix[1].weight"),
        (mix([f64::NAN, 1.0]), "target_mix[0].weight"),
        (
            SftConfig {
                target_template: Some("x".into()),
                ..mix([1.0, 1.0])
            },
            "target_mix",
        ),
    ] {
        let error = bad.validate().unwrap_err().to_string();
        assert!(error.contains(field), "{error}");
    }
}

/// `‖b − a‖ / ‖a − before‖` over every parameter: how far two updates of the same weights
/// land apart, relative to how far the first moved them.
/// A rollout of `trainer` with fixed advantages and completions of 1 to 4 tokens, so that
/// per-sequence (grpo) and per-token (dapo) aggregation weigh the rows differently.
fn uneven_batch(trainer: &mut GrpoTrainer) -> grpo_trainer::Batch {
    let (mut batch, _, _) = trainer.rollout().unwrap();
    for (i, row) in batch.rows.iter_mut().enumerate() {
        row.advantage = [1.0, -0.5, 0.25, -1.5][i % 4];
        let len = 1 + (i * 7) % 4;
        row.completion_ids.truncate(len);
        row.sampling_logprobs.truncate(len);
        row.from_model.truncate(len);
    }
    batch
}

/// Micro-batching is exact: for every loss type the update of a batch fed one row at a time
/// equals the update of the batch at once (bnpo, TRL's per-micro-batch token mean, is by
/// definition the per-sequence mean of `grpo` at one row and the global token mean of `dapo`
/// at the whole batch).
#[test]
fn micro_batches_of_one_row_equal_one_micro_batch_of_all() {
    // One model for every run: tests seed the shared device concurrently.
    let initial = tiny_model(5);
    let update = |loss_type: LossType, micro_batch_size: usize| {
        let config = GrpoConfig {
            beta: 0.04,
            loss_type,
            learning_rate: 1e-2,
            max_completion_length: 4,
            micro_batch_size,
            ..config()
        };
        let mut run = trainer_from(initial.clone(), config, None);
        let batch = uneven_batch(&mut run);
        assert_eq!(batch.rows.len(), 32);
        let metrics = run.update(&batch).unwrap();
        (weights(&initial), weights(run.model()), metrics["loss"])
    };
    let same = |what: &str,
                a: (Vec<Vec<f32>>, Vec<Vec<f32>>, f64),
                b: (Vec<Vec<f32>>, Vec<Vec<f32>>, f64)| {
        let relative = apart_relative_to_update(&a.0, &a.1, &b.1);
        // Float summation order alone: Adam normalises each parameter's step, so the order's
        // noise on near-zero gradients shows relative to the step (seen up to 2e-5); a wrong
        // aggregation moves the weights by a large fraction of it.
        assert!(
            relative <= 1e-4,
            "{what}: weights apart by {relative} of the update"
        );
        assert!(
            (a.2 - b.2).abs() <= 1e-5 * a.2.abs().max(1e-3),
            "{what}: loss {} vs {}",
            a.2,
            b.2
        );
    };
    for loss_type in [LossType::Grpo, LossType::Dapo, LossType::DrGrpo] {
        same(
            &format!("{loss_type:?}"),
            update(loss_type, 32),
            update(loss_type, 1),
        );
    }
    same(
        "bnpo at 1 row = grpo",
        update(LossType::Grpo, 32),
        update(LossType::Bnpo, 1),
    );
    same(
        "bnpo at 32 rows = dapo",
        update(LossType::Dapo, 32),
        update(LossType::Bnpo, 32),
    );
}

/// Splitting each micro-batch over threads changes only the order of float sums: from the same
/// weights and batch, one shard, two and three (groups split unevenly) give the same update
/// and metrics, for the token-sum (`grpo`) and global-token (`dapo`) aggregations, with the
/// KL term and μ = 2.
#[test]
fn an_update_split_over_shards_equals_the_unsplit_one() {
    for loss_type in [LossType::Grpo, LossType::Dapo] {
        let config = GrpoConfig {
            beta: 0.04,
            num_iterations: 2,
            loss_type,
            learning_rate: 1e-2,
            max_completion_length: 4,
            micro_batch_size: 32, // the whole batch in one micro-batch: 4 groups to split
            update_shards: 1,
            ..config()
        };
        let initial = tiny_model(3);
        let mut reference = trainer_from(initial.clone(), config.clone(), None);
        let batch = uneven_batch(&mut reference);
        let expected_metrics = reference.update(&batch).unwrap();
        let expected = weights(reference.model());
        let before = weights(&initial);
        assert_ne!(expected, before, "the update must move the weights");
        for shards in [2, 3] {
            let mut split = trainer_from(
                initial.clone(),
                GrpoConfig {
                    update_shards: shards,
                    ..config.clone()
                },
                None,
            );
            let metrics = split.update(&batch).unwrap();
            // The weights moved the same way: ‖Δ₁ − Δₙ‖ / ‖Δ₁‖ over every parameter. (Not per
            // entry: Adam's first steps are ≈ lr·sign(g), so an entry whose gradient is ~0 may
            // move either way under another summation order.)
            let relative = apart_relative_to_update(&before, &expected, &weights(split.model()));
            assert!(
                relative <= 1e-5,
                "{loss_type:?}, {shards} shards: weights apart by {relative} of the update"
            );
            for key in [
                "loss",
                "kl",
                "entropy",
                "grad_norm",
                "clip_ratio/region_mean",
            ] {
                let (x, y) = (expected_metrics[key], metrics[key]);
                assert!(
                    (x - y).abs() <= 1e-5 * x.abs().max(1e-3),
                    "{loss_type:?}, {shards} shards, {key}: {x} vs {y}"
                );
            }
        }
    }
}

/// SFT split over threads: the same loss and, within float summation order, the same update.
#[test]
fn an_sft_step_split_over_shards_equals_the_unsplit_one() {
    let rows: Vec<Row> = (0..7)
        .map(|i| Row::from_prompt(format!("{i}*{i}=")).with("answer", (i * i).to_string()))
        .collect();
    let initial = tiny_model(4);
    let step = |shards: usize| {
        let config = SftConfig {
            batch_size: 7,
            max_steps: 2,
            learning_rate: 1e-2,
            shards,
            ..Default::default()
        };
        let mut sft = SftTrainer::new(
            initial.clone(),
            Arc::new(ByteTokenizer),
            Dataset::from_rows(rows.clone()),
            config,
            None,
        )
        .unwrap();
        let metrics = sft.train().unwrap();
        (metrics, weights(&sft.into_model()))
    };
    let before = weights(&initial);
    let (one_metrics, one) = step(1);
    // By hand: prompts "i*i=" (4 bytes each, 28), answers 0 1 4 9 16 25 36 (10 bytes), an EOS
    // each (7): 45 tokens, forward and backward.
    assert_eq!(one_metrics[0]["compute/token_passes"], 3.0 * 45.0);
    for shards in [2, 3] {
        let (metrics, got) = step(shards);
        for (a, b) in one_metrics.iter().zip(&metrics) {
            let (x, y) = (a["loss"], b["loss"]);
            assert!(
                (x - y).abs() <= 1e-5 * x.abs(),
                "{shards} shards: loss {x} vs {y}"
            );
            assert_eq!(a["tokens"], b["tokens"]);
        }
        let relative = apart_relative_to_update(&before, &one, &got);
        assert!(
            relative <= 1e-5,
            "{shards} shards: weights apart by {relative}"
        );
    }
}

/// Reward 1 for any completion of a prompt starting with "Always", else `SaysSeven`'s: the
/// "Always" groups have equal rewards, no signal.
struct AlwaysOrSeven;

impl Verifier for AlwaysOrSeven {
    fn verify(&self, sample: &Sample<'_>) -> Result<Score, VerifyError> {
        if sample.prompt.starts_with("Always") {
            return Ok(Score::binary(true, "always"));
        }
        SaysSeven.verify(sample)
    }
}

fn mixed_trainer(config: GrpoConfig) -> GrpoTrainer {
    let rows = [
        "Always:",
        "Say a digit:",
        "Always!",
        "Digit?",
        "Always?",
        "Pick one:",
    ]
    .iter()
    .map(|p| Row::from_prompt(*p))
    .collect();
    GrpoTrainer::new(
        tiny_model(6),
        Arc::new(ByteTokenizer),
        VerifierSet::new(vec![(Member::new("mixed", AlwaysOrSeven), 1.0)]).unwrap(),
        Dataset::from_rows(rows),
        config,
        None,
    )
    .unwrap()
}

/// DAPO's dynamic sampling keeps only groups whose rewards differ, sampling more prompts until
/// the batch is full; without it the flat groups stay (with zero advantages).
#[test]
fn dynamic_sampling_keeps_only_groups_with_signal() {
    let config = GrpoConfig {
        prompts_per_step: 2,
        num_generations: 8,
        max_completion_length: 2,
        ..config()
    };
    let prompts = |batch: &grpo_trainer::Batch| -> Vec<String> {
        batch
            .prompt_ids
            .iter()
            .map(|ids| String::from_utf8(ids.iter().map(|&b| b as u8).collect()).unwrap())
            .collect()
    };
    let mut plain = mixed_trainer(config.clone());
    let mut flat_seen = false;
    for _ in 0..3 {
        let (batch, metrics, _) = plain.rollout().unwrap();
        assert!(!metrics.contains_key("dynamic_sampling/rounds"));
        flat_seen |= prompts(&batch).iter().any(|p| p.starts_with("Always"));
    }
    assert!(
        flat_seen,
        "the data order never put an Always prompt in a batch"
    );

    let mut dynamic = mixed_trainer(GrpoConfig {
        dynamic_sampling: true,
        max_resample_rounds: 5,
        ..config
    });
    let mut resampled = false;
    for _ in 0..3 {
        let (batch, metrics, _) = dynamic.rollout().unwrap();
        let kept = prompts(&batch);
        assert!(kept.iter().all(|p| !p.starts_with("Always")), "{kept:?}");
        assert_eq!(metrics["dynamic_sampling/groups_kept"], kept.len() as f64);
        // Every kept group's advantages are not all zero.
        for g in 0..kept.len() {
            assert!(
                batch
                    .rows
                    .iter()
                    .any(|r| r.group == g && r.advantage != 0.0)
            );
        }
        resampled |= metrics["dynamic_sampling/rounds"] > 1.0;
    }
    assert!(resampled, "no step needed a second round");
}

/// `mask_truncated_completions`: rows cut by the length limit leave the loss — the update is
/// that of the batch without them, however large their advantages.
#[test]
fn truncated_completions_masked_out_take_no_part_in_the_update() {
    let masking = GrpoConfig {
        mask_truncated_completions: true,
        learning_rate: 1e-2,
        max_completion_length: 4,
        ..config()
    };
    let initial = tiny_model(7);
    let mut run = trainer_from(initial.clone(), masking.clone(), None);
    let (mut batch, _, _) = run.rollout().unwrap();
    // Every third row truncated (the rollout marks `FinishReason::Length` rows so), with an
    // advantage that would dominate the update; the others in the loss.
    for (i, row) in batch.rows.iter_mut().enumerate() {
        row.in_loss = i % 3 != 0;
        row.advantage = match (row.in_loss, i % 2) {
            (false, _) => 50.0,
            (true, 0) => 1.0,
            (true, _) => -1.0,
        };
    }
    run.update(&batch).unwrap();
    let masked = weights(run.model());

    let mut without = batch.clone();
    without.rows.retain(|r| r.in_loss);
    let mut run = trainer_from(initial.clone(), masking.clone(), None);
    run.update(&without).unwrap();
    let relative = apart_relative_to_update(&weights(&initial), &masked, &weights(run.model()));
    assert!(relative <= 1e-5, "apart by {relative} of the update");

    // And the rollout masks exactly the truncated rows: here no completion can stop within
    // 4 tokens of a random byte model except by sampling EOS.
    let (batch, metrics, _) = trainer_from(
        initial,
        GrpoConfig {
            mask_truncated_completions: true,
            ..config()
        },
        None,
    )
    .rollout()
    .unwrap();
    let truncated = batch.rows.iter().filter(|r| !r.in_loss).count() as f64;
    assert_eq!(
        truncated / batch.rows.len() as f64,
        metrics["completions/clipped_ratio"]
    );
}

/// `sampling_logprob_gap`: the sampler's and the trainer's log-probs of the same tokens under
/// the same weights differ by float rounding only; a perturbed sampler shows up in full.
#[test]
fn the_sampling_logprob_gap_measures_the_two_code_paths() {
    // One model for both runs: tests seed the shared device concurrently, so two
    // `tiny_model(1)` calls need not give the same weights.
    let model = tiny_model(1);
    let mut run = trainer_from(model.clone(), config(), None);
    let (batch, _, _) = run.rollout().unwrap();
    let mut perturbed = batch.clone();
    let gap = run.update(&batch).unwrap()["sampling_logprob_gap"];
    assert!(gap < 1e-4, "{gap}");
    for row in &mut perturbed.rows {
        for lp in &mut row.sampling_logprobs {
            *lp -= 0.5;
        }
    }
    let mut run = trainer_from(model, config(), None);
    let gap = run.update(&perturbed).unwrap()["sampling_logprob_gap"];
    assert!((gap - 0.5).abs() < 1e-3, "{gap}");
}

/// `compute/*`: the token passes a step really runs, counted from its batch by hand — each
/// distinct prompt of a micro-batch once, each completion but its last token, × (3 per pass +
/// π_old + reference).
#[test]
fn token_passes_count_what_a_step_runs() {
    let run_step = |config: GrpoConfig| {
        let mut run = trainer(config, None);
        let (batch, rollout) = {
            let (batch, metrics, _) = run.rollout().unwrap();
            (batch, metrics)
        };
        let update = run.update(&batch).unwrap();
        (batch, rollout, update)
    };
    let prompts =
        |batch: &grpo_trainer::Batch| -> usize { batch.prompt_ids.iter().map(Vec::len).sum() };
    let completions = |batch: &grpo_trainer::Batch| -> usize {
        batch.rows.iter().map(|r| r.completion_ids.len() - 1).sum()
    };

    // μ = 2 and β > 0, the whole batch in one micro-batch and one shard.
    let config = GrpoConfig {
        num_iterations: 2,
        beta: 0.04,
        micro_batch_size: 32,
        update_shards: 1,
        max_completion_length: 3,
        ..config()
    };
    let (batch, rollout, update) = run_step(config.clone());
    assert_eq!(batch.rows.len(), 32, "every completion is scorable");
    // The sampler: each prompt once, then every sampled token but a completion's last.
    let sampled = (prompts(&batch) + completions(&batch)) as f64;
    assert_eq!(rollout["compute/sample_token_passes"], sampled);
    let positions = (prompts(&batch) + completions(&batch)) as f64;
    assert_eq!(
        update["compute/update_token_passes"],
        positions * (3.0 * 2.0 + 1.0 + 1.0)
    );

    // μ = 1, β = 0: no π_old and no reference forward; micro-batches of 4 rows split each
    // group of 8 in two, so every prompt runs twice.
    let (batch, _, update) = run_step(GrpoConfig {
        num_iterations: 1,
        beta: 0.0,
        micro_batch_size: 4,
        ..config
    });
    let positions = (2 * prompts(&batch) + completions(&batch)) as f64;
    assert_eq!(update["compute/update_token_passes"], 3.0 * positions);
}

/// Gradient checkpointing recomputes activations in the backward: the same update, and a
/// LoRA policy with it still trains its adapters only.
#[test]
fn gradient_checkpointing_gives_the_same_update() {
    let initial = lora_model();
    let update = |gradient_checkpointing: bool| {
        let config = GrpoConfig {
            beta: 0.04,
            max_completion_length: 4,
            gradient_checkpointing,
            ..config()
        };
        let mut run = trainer_from(initial.clone(), config, None);
        let batch = uneven_batch(&mut run);
        run.update(&batch).unwrap();
        run.model().valid()
    };
    let (plain, checkpointed) = (update(false), update(true));
    let before = weights_by_kind(&initial);
    let (a, b) = (weights_by_kind(&plain), weights_by_kind(&checkpointed));
    assert_eq!(before.0, b.0, "the base stays frozen");
    let apart = apart_relative_to_update(&before.1, &a.1, &b.1);
    assert!(apart <= 1e-5, "checkpointed vs plain update: {apart}");
}

/// A conversational row that never met a chat template would be sampled from an empty prompt;
/// both trainers refuse it, naming what to do.
#[test]
fn an_unrendered_conversation_is_refused_not_sampled_from_nothing() {
    let conversation =
        Row::parse(r#"{"prompt": [{"role": "user", "content": "Say a digit:"}]}"#).unwrap();
    let expect_refusal = |error: grpo_trainer::TrainerError| {
        let message = error.to_string();
        assert!(
            matches!(
                error,
                grpo_trainer::TrainerError::UnrenderedConversation { messages: 1, .. }
            ) && message.contains("Say a digit:")
                && message.contains("chat template"),
            "{message}"
        );
    };
    let mut grpo = GrpoTrainer::new(
        tiny_model(1),
        Arc::new(ByteTokenizer),
        verifiers(),
        Dataset::from_rows(vec![conversation.clone(); 4]),
        GrpoConfig {
            max_steps: 1,
            ..config()
        },
        None,
    )
    .unwrap();
    expect_refusal(grpo.train().unwrap_err());

    let mut sft = SftTrainer::new(
        tiny_model(1),
        Arc::new(ByteTokenizer),
        Dataset::from_rows(vec![conversation.with("answer", "7"); 4]),
        SftConfig {
            batch_size: 2,
            max_steps: 1,
            ..Default::default()
        },
        None,
    )
    .unwrap();
    expect_refusal(sft.train().unwrap_err());
}
