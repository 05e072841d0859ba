//! Multi-turn sampling: observations go through each row's KV cache, only the model's tokens
//! are marked as its own, and an episode that ends after one turn is one-turn sampling exactly.

use grpo_environments::{Ending, Episode, Outcome, Response};
use grpo_policy::burn::tensor::Device;
use grpo_policy::{ByteTokenizer, CausalLm, LmConfig, Tokenizer};
use grpo_sampler::{FinishReason, Sampler, SamplerError, SamplingConfig, Strategy};

fn small_model(seed: u64) -> CausalLm {
    let device = Device::flex();
    device.seed(seed);
    CausalLm::new(
        &LmConfig::small(ByteTokenizer::VOCAB_SIZE, 32, 2, 4, 64),
        &device,
    )
    .unwrap()
}

/// Answers every turn with `observation` (or ends at once when it is `None`), and reports the
/// turns it saw in its outcome's details.
struct Scripted {
    observation: Option<String>,
    seen: Vec<String>,
}

impl Episode for Scripted {
    fn respond(&mut self, turn: &str) -> Response {
        self.seen.push(turn.to_owned());
        match &self.observation {
            Some(text) => Response::Observe(text.clone()),
            None => Response::End,
        }
    }
    fn finish(&mut self, ending: Ending) -> Outcome {
        Outcome {
            reward: Some(self.seen.len() as f32),
            details: format!("{ending:?}:{}", self.seen.join("|")),
            ..Outcome::default()
        }
    }
}

fn episodes(n: usize, observation: Option<&str>) -> Vec<Box<dyn Episode>> {
    (0..n)
        .map(|_| {
            Box::new(Scripted {
                observation: observation.map(str::to_owned),
                seen: Vec::new(),
            }) as Box<dyn Episode>
        })
        .collect()
}

fn prompts() -> Vec<String> {
    ["12+7=", "a longer prompt", "x"]
        .iter()
        .map(|p| p.to_string())
        .collect()
}

/// Hot sampling where most bytes end a turn, so turns are short and every row has several.
fn config(seed: u64) -> SamplingConfig {
    SamplingConfig {
        num_generations: 3,
        temperature: 4.0,
        max_new_tokens: 40,
        stop_token_ids: (0..160).collect(),
        seed,
        ..Default::default()
    }
}

#[test]
fn an_episode_ending_after_one_turn_is_one_turn_sampling() {
    let model = small_model(3);
    let sampler = Sampler::default();
    for config in [
        config(7),
        // Stop strings instead of stop tokens: the completion's text is cut the same way.
        SamplingConfig {
            stop_token_ids: Vec::new(),
            stop_strings: vec!["a".into(), "1".into(), "\n".into()],
            ..config(8)
        },
    ] {
        let plain = sampler
            .sample(&model, &ByteTokenizer, &prompts(), &config)
            .unwrap();
        let mut eps = episodes(9, None);
        let episodic = sampler
            .sample_episodes(&model, &ByteTokenizer, &prompts(), &mut eps, 4, &config)
            .unwrap();
        assert_eq!(plain.prompt_ids, episodic.prompt_ids);
        for (a, b) in plain.completions.iter().zip(&episodic.completions) {
            assert_eq!(a.token_ids, b.token_ids);
            assert_eq!(a.logprobs, b.logprobs);
            assert_eq!(a.text, b.text);
            assert_eq!(a.finish_reason, b.finish_reason);
            assert_eq!(a.stop_string, b.stop_string);
            assert_eq!(b.turns, 1);
            assert!(b.from_model.iter().all(|&m| m));
            let outcome = b.outcome.as_ref().unwrap();
            let expected = match b.finish_reason {
                FinishReason::Stop => 1.0, // the one turn was answered
                _ => 0.0,                  // cut by the token budget: never answered
            };
            assert_eq!(outcome.reward, Some(expected));
        }
    }
}

#[test]
fn observations_go_through_the_cache_and_are_not_the_models() {
    let model = small_model(4);
    let observation = "<obs>";
    let obs_ids = ByteTokenizer.encode(observation);
    let config = config(11);
    let run = |strategy: Strategy| {
        let mut eps = episodes(9, Some(observation));
        Sampler { strategy }
            .sample_episodes(&model, &ByteTokenizer, &prompts(), &mut eps, 3, &config)
            .unwrap()
    };
    let cached = run(Strategy {
        shards: 1,
        ..Strategy::default()
    });
    let mut several_turns = 0;
    for c in &cached.completions {
        assert_eq!(c.from_model.len(), c.token_ids.len());
        assert_eq!(c.logprobs.len(), c.token_ids.len());
        // The transcript: model turns, each but the last followed by the observation's tokens.
        let mut at = 0;
        let mut turns = 0;
        let mut seen = Vec::new();
        while at < c.token_ids.len() {
            let start = at;
            while at < c.token_ids.len() && c.from_model[at] {
                at += 1;
            }
            turns += 1;
            seen.push(ByteTokenizer.decode(&c.token_ids[start..at]));
            if at < c.token_ids.len() {
                let end = (at + obs_ids.len()).min(c.token_ids.len());
                assert_eq!(&c.token_ids[at..end], &obs_ids[..end - at]);
                assert!(c.from_model[at..end].iter().all(|&m| !m));
                assert!(c.logprobs[at..end].iter().all(|&l| l == 0.0));
                at = end;
            }
        }
        assert_eq!(c.turns, turns);
        assert!(c.turns <= 3);
        several_turns += usize::from(c.turns > 1);
        let outcome = c.outcome.as_ref().unwrap();
        match c.finish_reason {
            // Three turns, each answered with an observation: the third wanted a fourth.
            FinishReason::MaxTurns => {
                assert_eq!(c.turns, 3);
                assert_eq!(outcome.details, format!("MaxTurns:{}", seen.join("|")));
            }
            FinishReason::Length => {
                assert_eq!(c.token_ids.len(), config.max_new_tokens);
                assert!(outcome.details.starts_with("Length:"));
            }
            FinishReason::Stop => panic!("this environment never ends an episode"),
        }
        assert_eq!(c.text, ByteTokenizer.decode(&c.token_ids));
    }
    assert!(several_turns >= 6, "most rows take several turns");

    // The same episodes recomputed from the whole transcript at every step (no KV cache), and
    // split over threads: the observations reached the cache exactly.
    for strategy in [
        Strategy {
            kv_cache: false,
            share_prefix: false,
            shards: 1,
        },
        Strategy {
            shards: 2,
            ..Strategy::default()
        },
    ] {
        let other = run(strategy);
        for (a, b) in cached.completions.iter().zip(&other.completions) {
            assert_eq!(a.token_ids, b.token_ids, "{strategy:?}");
            assert_eq!(a.from_model, b.from_model);
            let diff = a
                .logprobs
                .iter()
                .zip(&b.logprobs)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f32, f32::max);
            assert!(diff < 1e-4, "{strategy:?}: logprobs differ by {diff}");
        }
    }
}

#[test]
fn one_episode_per_completion() {
    let model = small_model(5);
    let mut eps = episodes(8, None);
    assert_eq!(
        Sampler::default().sample_episodes(
            &model,
            &ByteTokenizer,
            &prompts(),
            &mut eps,
            2,
            &config(1)
        ),
        Err(SamplerError::EpisodeCount {
            expected: 9,
            got: 8
        })
    );
    let mut eps = episodes(9, None);
    assert!(matches!(
        Sampler::default().sample_episodes(&model, &ByteTokenizer, &prompts(), &mut eps, 0, &config(1)),
        Err(SamplerError::InvalidConfig { field, .. }) if field == "max_turns"
    ));
}
