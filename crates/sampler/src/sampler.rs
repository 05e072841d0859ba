//! The decoding loop: prefill each prompt once, repeat its cache K ways, decode every live row
//! together, and let finished rows leave the batch.

use std::collections::VecDeque;

use grpo_environments::{Ending, Episode, Outcome, Response};
use grpo_policy::burn::tensor::{Device, Int, Tensor, TensorData};
use grpo_policy::{LanguageModel, ModelCache, Tokenizer};

use crate::select::choose;
use crate::stop::find_stop;
use crate::{SamplerError, SamplingConfig};
use grpo_base::SplitMix64;

/// Why a completion ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// An EOS or stop token, or a stop string.
    Stop,
    /// `max_new_tokens` reached (by the model's and the environment's tokens together, in an
    /// episode).
    Length,
    /// An episode wanted another turn after the model's `max_turns`-th.
    MaxTurns,
}

/// One sampled completion.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// Which prompt (its index in the input): the GRPO group.
    pub group: usize,
    /// Which of the prompt's K samples.
    pub sample: usize,
    /// Every token after the prompt: each sampled one, the EOS/stop token and the tokens of a
    /// stop string included (they were sampled, so the trainer scores them), and in an episode
    /// the observations' tokens between the model's turns.
    pub token_ids: Vec<u32>,
    /// Per token: whether the model sampled it (false for an observation's tokens, which the
    /// trainer masks out of the loss).
    pub from_model: Vec<bool>,
    /// The decoded completion (a whole transcript, in an episode), cut before a final stop
    /// string and without special tokens.
    pub text: String,
    /// Per token: log π(token) under softmax(logits / T), before top-k/top-p/min-p; 0 for an
    /// observation's tokens.
    pub logprobs: Vec<f32>,
    pub finish_reason: FinishReason,
    /// The stop string that ended the completion, if one did.
    pub stop_string: Option<String>,
    /// The model's turns (1 outside episodes).
    pub turns: usize,
    /// In an episode, what its environment reported at the end.
    pub outcome: Option<Outcome>,
}

/// The completions of a batch of prompts: `num_generations` per prompt, grouped by prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollouts {
    /// The prompts' token ids, in input order.
    pub prompt_ids: Vec<Vec<u32>>,
    /// Prompt 0's K completions, then prompt 1's, …
    pub completions: Vec<Completion>,
}

/// How the sampler spends compute. The defaults are what you want; the switches exist to
/// measure what the KV cache, prefix sharing and shards buy (see the `sampler` benchmark).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Strategy {
    /// Prefill each prompt once and repeat its cache K times (otherwise prefill B·K rows).
    pub share_prefix: bool,
    /// Decode one token per step from the KV cache (otherwise recompute the whole sequence).
    pub kv_cache: bool,
    /// Split the prompts into this many shards, each decoded by its own thread (0: one per
    /// core). A decode step is many small operations, most of them single-threaded on the CPU
    /// backends; shards keep every core busy. Each completion draws from its own random
    /// stream and no operation mixes rows, so the completions do not depend on the count.
    pub shards: usize,
}

impl Default for Strategy {
    fn default() -> Self {
        Strategy {
            share_prefix: true,
            kv_cache: true,
            shards: 0,
        }
    }
}

/// Draws K completions per prompt.
///
/// ```
/// use grpo_policy::{ByteTokenizer, CausalLm, LmConfig, burn::tensor::Device};
/// use grpo_sampler::{Sampler, SamplingConfig};
///
/// let device = Device::flex();
/// let model = CausalLm::new(&LmConfig::small(ByteTokenizer::VOCAB_SIZE, 32, 1, 2, 64), &device).unwrap();
/// let config = SamplingConfig { num_generations: 4, max_new_tokens: 8, seed: 1, ..Default::default() };
/// let rollouts = Sampler::default().sample(&model, &ByteTokenizer, &["12+7=".into()], &config).unwrap();
/// assert_eq!(rollouts.completions.len(), 4);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Sampler {
    pub strategy: Strategy,
}

/// A row still decoding.
struct Live {
    index: usize,
    stream: SplitMix64,
    /// Bytes of the turn's text already searched for stop strings.
    checked: usize,
    /// Where the model's current turn starts in the completion's tokens.
    turn_start: usize,
    /// An observation's tokens still to be fed, one per decoding step.
    forced: VecDeque<u32>,
}

impl Sampler {
    /// K completions (`config.num_generations`) of each prompt from any [`LanguageModel`]
    /// (a plain, non-autodiff copy: nothing is recorded for gradients).
    pub fn sample<M: LanguageModel>(
        &self,
        model: &M,
        tokenizer: &dyn Tokenizer,
        prompts: &[String],
        config: &SamplingConfig,
    ) -> Result<Rollouts, SamplerError> {
        self.sample_on(
            std::slice::from_ref(model),
            tokenizer,
            prompts,
            None,
            config,
        )
    }

    /// K episodes per prompt: `episodes` holds one per completion, in output order (prompt 0's
    /// K, then prompt 1's, …). When the model ends a turn (EOS, a stop token or stop string —
    /// add the environment's [`turn_stops`](grpo_environments::Environment::turn_stops) to
    /// `config.stop_strings`), its episode answers; an observation's tokens are fed through the
    /// row's KV cache one per decoding step, batched with the other rows, and the model decodes
    /// on after them — the transcript is never prefilled again. `max_new_tokens` bounds the
    /// model's and the observations' tokens together; at most `max_turns` model turns. Each
    /// episode's [`Episode::finish`] is called once, at its end. Seeded as [`sample`](Self::sample):
    /// a row draws from its random stream only for tokens it samples, so an episode that ends
    /// after one turn gives exactly the one-turn completion.
    pub fn sample_episodes<M: LanguageModel>(
        &self,
        model: &M,
        tokenizer: &dyn Tokenizer,
        prompts: &[String],
        episodes: &mut [Box<dyn Episode>],
        max_turns: usize,
        config: &SamplingConfig,
    ) -> Result<Rollouts, SamplerError> {
        self.sample_on(
            std::slice::from_ref(model),
            tokenizer,
            prompts,
            Some((episodes, max_turns)),
            config,
        )
    }

    /// [`sample`](Self::sample) (or, with `episodes` and `max_turns`,
    /// [`sample_episodes`](Self::sample_episodes)) spread over `replicas`: copies of one model
    /// on several devices, as data-parallel rollouts use them. The prompts are cut into at
    /// least one shard per replica and shard `i` decodes on `replicas[i % replicas.len()]`;
    /// every completion draws from its own stream, so on replicas of one backend the
    /// completions are those of a single replica.
    pub fn sample_on<M: LanguageModel>(
        &self,
        replicas: &[M],
        tokenizer: &dyn Tokenizer,
        prompts: &[String],
        episodes: Option<(&mut [Box<dyn Episode>], usize)>,
        config: &SamplingConfig,
    ) -> Result<Rollouts, SamplerError> {
        config.validate()?;
        let Some(model) = replicas.first() else {
            return Err(SamplerError::InvalidConfig {
                field: "replicas".into(),
                message: "at least one model is needed".into(),
            });
        };
        if let Some((episodes, max_turns)) = &episodes {
            if episodes.len() != prompts.len() * config.num_generations {
                return Err(SamplerError::EpisodeCount {
                    expected: prompts.len() * config.num_generations,
                    got: episodes.len(),
                });
            }
            if *max_turns == 0 {
                return Err(SamplerError::InvalidConfig {
                    field: "max_turns".into(),
                    message: "must be at least 1".into(),
                });
            }
        }
        let prompt_ids: Vec<Vec<u32>> = prompts.iter().map(|p| tokenizer.encode(p)).collect();
        if let Some(empty) = prompt_ids.iter().position(Vec::is_empty) {
            return Err(SamplerError::EmptyPrompt { index: empty });
        }
        let vocab = model.vocab_size();
        if let Some(&bad) = prompt_ids
            .iter()
            .flatten()
            .find(|&&id| id as usize >= vocab)
        {
            return Err(SamplerError::TokenOutOfVocabulary { id: bad, vocab });
        }
        let shards = match self.strategy.shards {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
        .max(replicas.len())
        .min(prompt_ids.len())
        .max(1);
        // Contiguous runs of prompts, as even as the count allows.
        let bounds: Vec<(usize, usize)> = (0..shards)
            .map(|i| {
                let share = |i: usize| i * prompt_ids.len() / shards;
                (share(i), share(i + 1))
            })
            .collect();
        // Each shard's episodes: its prompts' K each, a disjoint slice.
        let k = config.num_generations;
        let max_turns = episodes.as_ref().map_or(1, |e| e.1);
        let mut shard_episodes: Vec<Option<&mut [Box<dyn Episode>]>> = match episodes {
            None => bounds.iter().map(|_| None).collect(),
            Some((mut rest, _)) => bounds
                .iter()
                .map(|&(start, end)| {
                    let (mine, tail) = std::mem::take(&mut rest).split_at_mut((end - start) * k);
                    rest = tail;
                    Some(mine)
                })
                .collect(),
        };
        let completions = if shards == 1 {
            let episodes = shard_episodes.pop().flatten();
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.sample_shard(
                    model,
                    tokenizer,
                    &prompt_ids,
                    0,
                    episodes,
                    max_turns,
                    config,
                )
            }))
            .map_err(|payload| SamplerError::ShardFailed {
                replica: 0,
                message: grpo_base::panic_message(payload.as_ref()),
            })?
        } else {
            std::thread::scope(|scope| {
                let handles: Vec<_> = bounds
                    .iter()
                    .zip(shard_episodes)
                    .enumerate()
                    .map(|(i, (&(start, end), episodes))| {
                        let prompt_ids = &prompt_ids[start..end];
                        let model = &replicas[i % replicas.len()];
                        scope.spawn(move || {
                            self.sample_shard(
                                model, tokenizer, prompt_ids, start, episodes, max_turns, config,
                            )
                        })
                    })
                    .collect();
                let mut completions = Vec::new();
                for (i, handle) in handles.into_iter().enumerate() {
                    let shard = handle.join().map_err(|payload| SamplerError::ShardFailed {
                        replica: i % replicas.len(),
                        message: grpo_base::panic_message(payload.as_ref()),
                    })?;
                    completions.extend(shard);
                }
                Ok::<_, SamplerError>(completions)
            })?
        };
        Ok(Rollouts {
            prompt_ids,
            completions,
        })
    }

    /// The completions of `prompt_ids`, whose first prompt is prompt `first_group` of the call;
    /// with `episodes`, one per completion, multi-turn.
    #[allow(clippy::too_many_arguments)]
    fn sample_shard<M: LanguageModel>(
        &self,
        model: &M,
        tokenizer: &dyn Tokenizer,
        prompt_ids: &[Vec<u32>],
        first_group: usize,
        mut episodes: Option<&mut [Box<dyn Episode>]>,
        max_turns: usize,
        config: &SamplingConfig,
    ) -> Vec<Completion> {
        let k = config.num_generations;
        let device = model.device();
        let mut stop_ids = tokenizer.eos_ids().to_vec();
        stop_ids.extend(&config.stop_token_ids);

        // Every (prompt, sample) pair, in output order.
        let mut completions: Vec<Completion> = (0..prompt_ids.len() * k)
            .map(|i| Completion {
                group: first_group + i / k,
                sample: i % k,
                token_ids: Vec::new(),
                from_model: Vec::new(),
                text: String::new(),
                logprobs: Vec::new(),
                finish_reason: FinishReason::Length,
                stop_string: None,
                turns: 1,
                outcome: None,
            })
            .collect();
        let mut live: Vec<Live> = (0..completions.len())
            .map(|i| Live {
                index: i,
                // One stream per completion, keyed by (prompt, sample): a completion never
                // depends on its batch mates.
                stream: SplitMix64::keyed(
                    config.seed,
                    &[(first_group + i / k) as u64, (i % k) as u64],
                ),
                checked: 0,
                turn_start: 0,
                forced: VecDeque::new(),
            })
            .collect();

        // Prefill: [B, P] (left-padded) then repeat K ways, or [B·K, P] without sharing.
        let rows: Vec<&Vec<u32>> = if self.strategy.share_prefix {
            prompt_ids.iter().collect()
        } else {
            prompt_ids
                .iter()
                .flat_map(|p| std::iter::repeat_n(p, k))
                .collect()
        };
        let (tokens, padding) = left_padded(&rows, tokenizer.pad_id(), &device);
        let width = tokens.dims()[1];
        let mut cache = if self.strategy.kv_cache {
            model.new_decoding_cache(padding, width + config.max_new_tokens)
        } else {
            model.new_cache(padding)
        };
        let hidden = model.forward_hidden(tokens, &mut cache);
        let mut logits = last_position_logits(model, hidden, width);
        if self.strategy.share_prefix && k > 1 {
            cache.repeat_rows(k, &device);
            let repeated: Vec<usize> = (0..prompt_ids.len())
                .flat_map(|b| std::iter::repeat_n(b, k))
                .collect();
            logits = logits.select(0, index(&repeated, &device));
        }

        for step in 0..config.max_new_tokens {
            // A row being fed an observation samples nothing and draws nothing.
            let uniforms: Vec<f32> = live
                .iter_mut()
                .map(|row| {
                    if row.forced.is_empty() {
                        row.stream.uniform_f32()
                    } else {
                        0.0
                    }
                })
                .collect();
            let (ids, logprobs) = choose(logits, &uniforms, config);
            // The token each row feeds next: the sampled one, or its observation's next.
            let mut fed: Vec<u32> = Vec::with_capacity(live.len());
            let mut still: Vec<usize> = Vec::with_capacity(live.len());
            for (position, row) in live.iter_mut().enumerate() {
                let completion = &mut completions[row.index];
                if let Some(token) = row.forced.pop_front() {
                    completion.token_ids.push(token);
                    completion.from_model.push(false);
                    completion.logprobs.push(0.0);
                    fed.push(token);
                    if row.forced.is_empty() {
                        row.turn_start = completion.token_ids.len();
                        row.checked = 0;
                    }
                    still.push(position);
                    continue;
                }
                completion.token_ids.push(ids[position]);
                completion.from_model.push(true);
                completion.logprobs.push(logprobs[position]);
                fed.push(ids[position]);
                // If the turn ended: its text, and where the stop string that ended it starts
                // (`None` for a stop token).
                let mut turn_end: Option<(String, Option<(usize, &String)>)> = None;
                if stop_ids.contains(&ids[position]) {
                    if episodes.is_none() {
                        completion.finish_reason = FinishReason::Stop;
                        continue;
                    }
                    let text = tokenizer.decode(&completion.token_ids[row.turn_start..]);
                    turn_end = Some((text, None));
                } else if !config.stop_strings.is_empty() {
                    let text = tokenizer.decode(&completion.token_ids[row.turn_start..]);
                    match find_stop(&text, row.checked, &config.stop_strings) {
                        Some((at, which)) => {
                            turn_end = Some((text, Some((at, &config.stop_strings[which]))));
                        }
                        None => row.checked = text.len(),
                    }
                }
                let Some((text, stop)) = turn_end else {
                    still.push(position);
                    continue;
                };
                // The completion ends here unless the episode answers and has turns left.
                let ending = match episodes.as_deref_mut() {
                    None => FinishReason::Stop,
                    Some(episodes) => {
                        let end = stop.map_or(text.len(), |(at, stop)| at + stop.len());
                        match episodes[row.index].respond(&text[..end]) {
                            Response::End => FinishReason::Stop,
                            Response::Observe(_) if completion.turns == max_turns => {
                                FinishReason::MaxTurns
                            }
                            Response::Observe(observation) => {
                                completion.turns += 1;
                                row.forced = tokenizer.encode(&observation).into();
                                row.checked = 0;
                                row.turn_start = completion.token_ids.len() + row.forced.len();
                                still.push(position);
                                continue;
                            }
                        }
                    }
                };
                completion.finish_reason = ending;
                if let Some((at, stop)) = stop {
                    completion.stop_string = Some(stop.clone());
                    let before = tokenizer.decode(&completion.token_ids[..row.turn_start]);
                    completion.text = before + &text[..at];
                }
            }
            if still.is_empty() || step + 1 == config.max_new_tokens {
                break;
            }
            // Finished rows leave the batch: the cache and the next step follow live rows only.
            if still.len() < live.len() {
                if self.strategy.kv_cache {
                    cache.select_rows(&still, &device);
                }
                let mut keep = vec![false; live.len()];
                for &position in &still {
                    keep[position] = true;
                }
                let mut keep = keep.into_iter();
                live.retain(|_| keep.next().unwrap_or(false));
            }
            let next: Vec<u32> = still.iter().map(|&p| fed[p]).collect();
            logits = if self.strategy.kv_cache {
                let hidden = model.forward_hidden(column(&next, &device), &mut cache);
                last_position_logits(model, hidden, 1)
            } else {
                // Full recompute of every live row from its prompt (the benchmark's baseline).
                let sequences: Vec<Vec<u32>> = live
                    .iter()
                    .map(|row| {
                        let c = &completions[row.index];
                        prompt_ids[c.group - first_group]
                            .iter()
                            .chain(&c.token_ids)
                            .copied()
                            .collect()
                    })
                    .collect();
                let refs: Vec<&Vec<u32>> = sequences.iter().collect();
                let (tokens, padding) = left_padded(&refs, tokenizer.pad_id(), &device);
                cache = model.new_cache(padding);
                let hidden = model.forward_hidden(tokens, &mut cache);
                let width = hidden.dims()[1];
                last_position_logits(model, hidden, width)
            };
        }
        for (i, completion) in completions.iter_mut().enumerate() {
            if completion.stop_string.is_none() {
                completion.text = tokenizer.decode(&completion.token_ids);
            }
            if let Some(episodes) = episodes.as_deref_mut() {
                completion.outcome = Some(episodes[i].finish(match completion.finish_reason {
                    FinishReason::Stop => Ending::Done,
                    FinishReason::Length => Ending::Length,
                    FinishReason::MaxTurns => Ending::MaxTurns,
                }));
            }
        }
        completions
    }
}

/// The LM head at the last position only: `[rows, width, d]` → `[rows, vocab]`.
fn last_position_logits<M: LanguageModel>(model: &M, hidden: Tensor<3>, width: usize) -> Tensor<2> {
    let last = hidden.narrow(1, width - 1, 1); // [rows, 1, d_model]
    let logits = model.logits(last); // [rows, 1, vocab]
    let [rows, _, vocab] = logits.dims();
    logits.reshape([rows, vocab])
}

/// Rows left-padded with `pad` to a common width: `[rows, width]`, and each row's padding.
fn left_padded(rows: &[&Vec<u32>], pad: u32, device: &Device) -> (Tensor<2, Int>, Vec<usize>) {
    let width = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let mut flat = Vec::with_capacity(rows.len() * width);
    let mut padding = Vec::with_capacity(rows.len());
    for row in rows {
        padding.push(width - row.len());
        flat.extend(std::iter::repeat_n(i64::from(pad), width - row.len()));
        flat.extend(row.iter().map(|&t| i64::from(t)));
    }
    (
        Tensor::from_data(TensorData::new(flat, [rows.len(), width]), device),
        padding,
    )
}

/// One token per row: `[rows, 1]`.
fn column(ids: &[u32], device: &Device) -> Tensor<2, Int> {
    let flat: Vec<i64> = ids.iter().map(|&t| i64::from(t)).collect();
    Tensor::from_data(TensorData::new(flat, [ids.len(), 1]), device)
}

fn index(rows: &[usize], device: &Device) -> Tensor<1, Int> {
    let flat: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
    Tensor::from_data(TensorData::new(flat, [rows.len()]), device)
}
