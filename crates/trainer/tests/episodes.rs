//! GRPO through an environment: a one-turn environment is today's GRPO exactly, observation
//! tokens never reach the loss, and the environment's reward and counts reach the metrics.

use std::sync::Arc;

use grpo_data::{Dataset, Row};
use grpo_environments::{Ending, Environment, EnvironmentError, Episode, Outcome, Response};
use grpo_policy::{ByteTokenizer, CausalLm};
use grpo_trainer::{GrpoConfig, GrpoTrainer, LossType, Metrics, TrainerError};

mod common;
use common::{apart_relative_to_update, timeless, tiny_model, verifiers, weights};

fn prompts() -> Dataset {
    Dataset::from_rows(
        ["Say a digit:", "Digit?", "Pick one:", "Go:"]
            .iter()
            .map(|p| Row::from_prompt(*p))
            .collect(),
    )
}

fn config() -> GrpoConfig {
    GrpoConfig {
        prompts_per_step: 4,
        num_generations: 4,
        micro_batch_size: 16,
        max_steps: 3,
        learning_rate: 2e-2,
        lr_scheduler_type: grpo_trainer::Schedule::Constant,
        max_completion_length: 6,
        seed: 7,
        ..Default::default()
    }
}

fn trainer(
    model: CausalLm,
    config: GrpoConfig,
    run_dir: Option<std::path::PathBuf>,
) -> GrpoTrainer {
    GrpoTrainer::new(
        model,
        Arc::new(ByteTokenizer),
        verifiers(),
        prompts(),
        config,
        run_dir,
    )
    .unwrap()
}

/// Answers each model turn with `observation` `observations` times, then ends; its reward is
/// `reward`; it reports one tool call per observation, the first of them failed.
struct Scripted {
    observation: &'static str,
    observations: usize,
    reward: Option<f32>,
    /// Stop strings ending a turn.
    stops: Vec<String>,
}

struct ScriptedEpisode {
    observation: &'static str,
    left: usize,
    given: usize,
    reward: Option<f32>,
}

impl Environment for Scripted {
    fn turn_stops(&self) -> Vec<String> {
        self.stops.clone()
    }
    fn start(&self, row: &Row) -> Result<Box<dyn Episode>, EnvironmentError> {
        if row.prompt().is_empty() {
            return Err(EnvironmentError::field("prompt", "is empty"));
        }
        Ok(Box::new(ScriptedEpisode {
            observation: self.observation,
            left: self.observations,
            given: 0,
            reward: self.reward,
        }))
    }
}

impl Episode for ScriptedEpisode {
    fn respond(&mut self, _turn: &str) -> Response {
        if self.left == 0 {
            return Response::End;
        }
        self.left -= 1;
        self.given += 1;
        Response::Observe(self.observation.into())
    }
    fn finish(&mut self, _ending: Ending) -> Outcome {
        Outcome {
            reward: self.reward,
            details: format!("{} observations", self.given),
            tool_calls: self.given,
            tool_failures: usize::from(self.given > 0),
        }
    }
}

#[test]
fn a_one_turn_environment_is_grpo_exactly() {
    let initial = tiny_model(1);
    let one_turn = Arc::new(Scripted {
        observation: "",
        observations: 0,
        reward: None,
        stops: Vec::new(),
    });
    for loss_type in [LossType::Grpo, LossType::Dapo] {
        let config = GrpoConfig {
            loss_type,
            beta: 0.04,
            ..config()
        };
        let mut plain = trainer(initial.clone(), config.clone(), None);
        let mut episodic =
            trainer(initial.clone(), config, None).with_environment(one_turn.clone());
        let a = plain.train().unwrap();
        let b = episodic.train().unwrap();
        for (a, b) in a.iter().zip(&b) {
            let b: Metrics = b
                .iter()
                .filter(|(k, _)| a.contains_key(*k))
                .map(|(k, v)| (k.clone(), *v))
                .collect();
            assert_eq!(timeless(a), timeless(&b), "{loss_type:?}");
        }
        assert_eq!(b[0]["episodes/mean_turns"], 1.0);
        assert_eq!(b[0]["tools/call_frequency"], 0.0);
        assert_eq!(
            weights(plain.model()),
            weights(episodic.model()),
            "{loss_type:?}"
        );
    }
}

/// Observation tokens at the end of a completion (as when the token budget cuts an episode
/// after a tool result) precede nothing the model wrote: if they took any part in the loss —
/// as tokens, or in a length normalisation — the update would change. It does not.
#[test]
fn observation_tokens_never_reach_the_loss() {
    let initial = tiny_model(2);
    for loss_type in [
        LossType::Grpo,
        LossType::Dapo,
        LossType::DrGrpo,
        LossType::Bnpo,
    ] {
        let config = GrpoConfig {
            loss_type,
            beta: 0.04,
            num_iterations: 2,
            micro_batch_size: 5,
            ..config()
        };
        let mut run = trainer(initial.clone(), config.clone(), None);
        let (mut batch, _, _) = run.rollout().unwrap();
        for (i, row) in batch.rows.iter_mut().enumerate() {
            row.advantage = [1.0, -0.5, 0.25, -1.5][i % 4];
        }
        let mut observed = batch.clone();
        for (i, row) in observed.rows.iter_mut().enumerate() {
            for t in 0..(i % 3 + 1) {
                row.completion_ids.push(100 + (i * 7 + t) as u32 % 150);
                row.from_model.push(false);
                row.sampling_logprobs.push(0.0);
            }
        }
        let plain_metrics = run.update(&batch).unwrap();
        let plain = weights(run.model());
        let mut run = trainer(initial.clone(), config, None);
        let observed_metrics = run.update(&observed).unwrap();
        // Float rounding alone: the padded width differs, so the products tile differently.
        // Counting the observations in a length normalisation would move the update by tens
        // of percent (1 to 3 extra tokens on completions of at most 6).
        let relative = apart_relative_to_update(&weights(&initial), &plain, &weights(run.model()));
        assert!(
            relative <= 1e-4,
            "{loss_type:?}: apart by {relative} of the update"
        );
        for key in ["loss", "entropy", "kl", "sampling_logprob_gap"] {
            let (a, b) = (plain_metrics[key], observed_metrics[key]);
            assert!(
                (a - b).abs() <= 1e-5 * a.abs().max(1e-3),
                "{loss_type:?} {key}: {a} vs {b}"
            );
        }
    }
}

#[test]
fn episodes_reach_the_batch_the_metrics_and_the_completions_log() {
    let dir = tempfile::tempdir().unwrap();
    let env = Arc::new(Scripted {
        observation: "<ok>",
        observations: 1,
        reward: Some(1.0),
        // Most bytes end a turn at once, so episodes take their second turn.
        stops: (b'!'..=b'~').map(|c| (c as char).to_string()).collect(),
    });
    let config = GrpoConfig {
        environment_reward_weight: 0.5,
        max_completion_length: 12,
        log_completions: 16,
        max_steps: 1,
        ..config()
    };
    let mut run =
        trainer(tiny_model(3), config, Some(dir.path().to_path_buf())).with_environment(env);
    let (batch, metrics, _) = run.rollout().unwrap();
    let mut observed = 0;
    for row in &batch.rows {
        assert_eq!(row.from_model.len(), row.completion_ids.len());
        let obs: Vec<u32> = row
            .completion_ids
            .iter()
            .zip(&row.from_model)
            .filter(|(_, m)| !**m)
            .map(|(t, _)| *t)
            .collect();
        if !obs.is_empty() {
            observed += 1;
            assert!(b"<ok>".starts_with(&obs.iter().map(|&t| t as u8).collect::<Vec<_>>()));
        }
    }
    assert!(
        observed > batch.rows.len() / 2,
        "{observed} of {} rows observed",
        batch.rows.len()
    );
    // Reward = the verifier's + 0.5 × the environment's 1.
    let expected = metrics["rewards/seven/mean"] + 0.5;
    assert!((metrics["reward"] - expected).abs() < 1e-6, "{metrics:?}");
    assert_eq!(metrics["rewards/environment/mean"], 1.0);
    let turns = metrics["episodes/mean_turns"];
    assert!(turns > 1.0 && turns <= 2.0, "{turns}");
    // One call per observation, the first failed: failures / calls = 1.
    assert_eq!(metrics["tools/call_frequency"], turns - 1.0);
    assert_eq!(metrics["tools/failure_frequency"], 1.0);

    run.train().unwrap();
    let log = std::fs::read_to_string(dir.path().join("completions.jsonl")).unwrap();
    let entries: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let two_turns = entries
        .iter()
        .find(|e| e["environment"]["turns"] == 2)
        .expect("an episode of two turns is logged");
    let transcript = two_turns["transcript"].as_array().unwrap();
    assert_eq!(transcript[0]["role"], "assistant");
    assert_eq!(transcript[1]["role"], "environment");
    assert_eq!(transcript[1]["content"], "<ok>");
    assert_eq!(two_turns["environment"]["details"], "1 observations");
}

#[test]
fn an_episode_that_cannot_start_names_its_row() {
    let rows = Dataset::from_rows(vec![Row::from_prompt("")]);
    let mut run = GrpoTrainer::new(
        tiny_model(4),
        Arc::new(ByteTokenizer),
        verifiers(),
        rows,
        GrpoConfig {
            prompts_per_step: 1,
            ..config()
        },
        None,
    )
    .unwrap()
    .with_environment(Arc::new(Scripted {
        observation: "",
        observations: 0,
        reward: None,
        stops: Vec::new(),
    }));
    match run.rollout() {
        Err(error @ TrainerError::Environment { .. }) => {
            assert_eq!(
                error.to_string(),
                "environment, for the row whose prompt begins \"\": row field `prompt` is empty"
            );
        }
        other => panic!("expected an environment error, got {:?}", other.map(|_| ())),
    }
}

/// A warm-up played through the tool-calling environment: the calculator's real result sits in
/// the sequence as context, and the loss is the mean cross-entropy over the model's tokens
/// alone — checked against log-probs worked out here, one row at a time, from the model's
/// plain forward.
#[test]
fn a_demonstration_through_the_environment_teaches_only_the_models_tokens() {
    use grpo_environments::{Calculator, ToolCalling};
    use grpo_policy::burn::tensor::{Int, Tensor, TensorData};
    use grpo_policy::{LanguageModel, Tokenizer};
    use grpo_trainer::{SftConfig, SftTrainer};

    let call = r#"<tool_call>{"name": "calculator", "arguments": {"expression": "{expression}"}}</tool_call>"#;
    let rows: Vec<Row> = [("2+3", "5"), ("9-4", "5"), ("7+8", "15")]
        .iter()
        .map(|(e, a)| {
            Row::from_prompt(format!("What is {e}?"))
                .with("expression", *e)
                .with("answer", *a)
        })
        .collect();
    let config = SftConfig {
        batch_size: rows.len(),
        max_steps: 1,
        target_template: Some(format!("{call}Answer: {{answer}}")),
        ..Default::default()
    };
    let environment =
        Arc::new(ToolCalling::new(vec![Arc::new(Calculator)], Default::default()).unwrap());
    let model = tiny_model(3);
    let mut sft = SftTrainer::new(
        model.clone(),
        Arc::new(ByteTokenizer),
        Dataset::from_rows(rows.clone()),
        config.clone(),
        None,
    )
    .unwrap()
    .with_environment(environment);
    let metrics = sft.train_step().unwrap();

    // By hand: each whole transcript, and which of its completion bytes the model writes.
    let (mut sum, mut count, mut sum_all, mut count_all) = (0.0f64, 0usize, 0.0f64, 0usize);
    for row in &rows {
        let expression = row.get("expression").unwrap().as_str().unwrap();
        let answer = row.get("answer").unwrap().as_str().unwrap();
        let turn = call.replace("{expression}", expression);
        let pieces = [
            (turn.clone(), true),
            (format!("<tool_response>{answer}</tool_response>"), false),
            (format!("Answer: {answer}"), true),
        ];
        let mut ids = ByteTokenizer.encode(row.prompt());
        let prompt_len = ids.len();
        let mut mine = Vec::new();
        for (text, model_writes) in &pieces {
            let piece = ByteTokenizer.encode(text);
            mine.extend(std::iter::repeat_n(*model_writes, piece.len()));
            ids.extend(piece);
        }
        ids.push(ByteTokenizer.eos_ids()[0]);
        mine.push(true);
        let tokens = Tensor::<2, Int>::from_data(
            TensorData::new(
                ids.iter().map(|&t| t as i64).collect::<Vec<_>>(),
                [1, ids.len()],
            ),
            &model.device(),
        );
        let logits = model
            .forward(tokens, &mut model.new_cache(vec![0]))
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let vocab = model.vocab_size();
        for (k, &writes) in mine.iter().enumerate() {
            // Position p predicts token p + 1.
            let p = prompt_len + k - 1;
            let row_logits = &logits[p * vocab..(p + 1) * vocab];
            let max = row_logits.iter().fold(f32::MIN, |a, &b| a.max(b)) as f64;
            let log_z = max
                + row_logits
                    .iter()
                    .map(|&l| (l as f64 - max).exp())
                    .sum::<f64>()
                    .ln();
            let logp = row_logits[ids[prompt_len + k] as usize] as f64 - log_z;
            sum_all += logp;
            count_all += 1;
            if writes {
                sum += logp;
                count += 1;
            }
        }
    }
    assert_eq!(metrics["tokens"], count as f64);
    let expected = -sum / count as f64;
    let unmasked = -sum_all / count_all as f64;
    eprintln!(
        "loss {} (by hand {expected}, unmasked {unmasked})",
        metrics["loss"]
    );
    assert!(
        (metrics["loss"] - expected).abs() < 1e-5 * expected.abs(),
        "loss {} vs {expected} by hand",
        metrics["loss"]
    );
    // The check bites: counting the tool's bytes gives a loss at least 10× farther away (an
    // untrained model gives every byte about ln 259, so the two differ by only ~1e-3).
    assert!(
        (unmasked - expected).abs() > 10.0 * (metrics["loss"] - expected).abs(),
        "unmasked {unmasked}, masked {expected}, trainer {}",
        metrics["loss"]
    );
}

/// A target the environment ends before it is over is refused, naming the row.
#[test]
fn a_demonstration_the_environment_cuts_short_names_its_row() {
    use grpo_trainer::{SftConfig, SftTrainer};
    let rows = vec![Row::from_prompt("Say a digit:")];
    let environment = Arc::new(Scripted {
        observation: "",
        observations: 0,
        reward: None,
        stops: vec![";".into()],
    });
    let mut sft = SftTrainer::new(
        tiny_model(3),
        Arc::new(ByteTokenizer),
        Dataset::from_rows(rows),
        SftConfig {
            batch_size: 1,
            max_steps: 1,
            target_template: Some("7; 8".into()),
            ..Default::default()
        },
        None,
    )
    .unwrap()
    .with_environment(environment);
    let error = sft.train_step().unwrap_err().to_string();
    assert!(
        error.contains("Say a digit:")
            && error.contains("after turn 1")
            && error.contains("\" 8\""),
        "{error}"
    );
}
