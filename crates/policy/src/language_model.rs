//! What the sampler and the trainers need from a policy: the [`LanguageModel`] trait. A model
//! of your own — another architecture, a recurrent net, a wrapped adapter — is one type
//! implementing it; the sampler and the GRPO and SFT trainers take any implementor unchanged.

use std::path::Path;

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};

use crate::cache::row_index;
use crate::error::Result;
use crate::logprobs::{CompletionLogits, GroupedCompletions};

/// What a model carries from one forward to the next (keys and values, a recurrent state),
/// per batch row. The sampler re-arranges it along the batch; the trainer's grouped forward
/// repeats a prompt's state to the rows that continue it.
pub trait ModelCache: Send {
    /// Keeps the listed rows, in that order (a row may be listed several times).
    fn select_rows(&mut self, rows: &[usize], device: &Device);

    /// Repeats each row `times` times: row r becomes rows `r·times .. (r+1)·times`.
    fn repeat_rows(&mut self, times: usize, device: &Device) {
        let rows: Vec<usize> = (0..self.batch_size())
            .flat_map(|r| std::iter::repeat_n(r, times))
            .collect();
        self.select_rows(&rows, device);
    }

    /// The rows it holds.
    fn batch_size(&self) -> usize;
}

/// A causal language model GRPO can train: token ids in, next-token logits out, with a cache
/// so that decoding one token costs one position.
///
/// Rows of a batch are **left-padded** to a common width: `padding[row]` positions at the start
/// of a row are padding, which the model must not let influence the real positions (an
/// attention mask, or a recurrent state that skips them). Everything else — the sampler's
/// prefix sharing, the trainer's one-prompt-per-group forward, log-probs and entropies — is
/// built on these methods, so an implementation needs only its forward pass.
///
/// The trainer keeps the model on an autodiff device and takes [`Module::valid`] copies for
/// sampling and the reference; [`Module::fork`] gives each training shard its own graph.
///
/// ```
/// use grpo_policy::{ByteTokenizer, CausalLm, LanguageModel, LmConfig, burn::tensor::{Device, Int, Tensor}};
///
/// let device = Device::flex();
/// let model = CausalLm::new(&LmConfig::small(ByteTokenizer::VOCAB_SIZE, 32, 1, 2, 64), &device).unwrap();
/// let mut cache = model.new_cache(vec![0]);
/// let prompt = Tensor::<2, Int>::from_ints([[3, 1, 4]], &device);
/// let logits = model.forward(prompt, &mut cache); // [1, 3, vocab]
/// assert_eq!(logits.dims(), [1, 3, model.vocab_size()]);
/// let next = Tensor::<2, Int>::from_ints([[1]], &device);
/// assert_eq!(model.forward(next, &mut cache).dims(), [1, 1, model.vocab_size()]);
/// ```
pub trait LanguageModel: Module + Sync + Sized {
    type Cache: ModelCache;

    fn vocab_size(&self) -> usize;

    /// The device the weights live on.
    fn device(&self) -> Device;

    /// The frozen model this one adapts, sharing its weights, when it is an adapter on a
    /// frozen base (LoRA): the model with its adapters off, PEFT's `disable_adapter()`. GRPO
    /// takes it as the reference policy (β > 0), so no copy of the initial weights is kept.
    /// By default `None`: the reference is a copy of the initial model.
    fn without_adapters(&self) -> Option<Self> {
        None
    }

    /// An empty cache for a batch whose rows have the given left padding.
    fn new_cache(&self, padding: Vec<usize>) -> Self::Cache;

    /// An empty cache for decoding up to `capacity` positions per row without autodiff; a
    /// model that can preallocate does so here. By default, [`LanguageModel::new_cache`].
    fn new_decoding_cache(&self, padding: Vec<usize>, capacity: usize) -> Self::Cache {
        let _ = capacity;
        self.new_cache(padding)
    }

    /// The last hidden states `[batch, seq, hidden]` of `tokens` `[batch, seq]` appended after
    /// what `cache` holds (which it then also holds). A whole sequence (training, prefill) or
    /// one token per row (decoding).
    fn forward_hidden(&self, tokens: Tensor<2, Int>, cache: &mut Self::Cache) -> Tensor<3>;

    /// The LM head: `[batch, seq, hidden]` → `[batch, seq, vocab]`. Kept apart from
    /// [`LanguageModel::forward_hidden`] so that callers pay for the vocabulary projection
    /// only at the positions they read.
    fn logits(&self, hidden: Tensor<3>) -> Tensor<3>;

    /// Writes the model (weights and whatever [`LanguageModel::load`] needs to rebuild it)
    /// into `dir`, atomically: what checkpoints hold.
    fn save(&self, dir: &Path) -> Result<()>;

    /// Reads a model [`LanguageModel::save`] wrote, onto `device`.
    fn load(dir: &Path, device: &Device) -> Result<Self>;

    /// Logits for `tokens` `[batch, seq]` after what `cache` holds: `[batch, seq, vocab]`.
    fn forward(&self, tokens: Tensor<2, Int>, cache: &mut Self::Cache) -> Tensor<3> {
        let hidden = self.forward_hidden(tokens, cache);
        self.logits(hidden)
    }

    /// The completion logits of `tokens` `[batch, prompt_len + completion_len]`, prompts
    /// left-padded by `padding[row]`: one forward over every row's whole sequence. The LM head
    /// runs only at the `completion_len` positions that predict completion tokens.
    fn completion_logits(
        &self,
        tokens: Tensor<2, Int>,
        prompt_len: usize,
        padding: Vec<usize>,
    ) -> CompletionLogits {
        let [_, total] = tokens.dims();
        assert!(
            prompt_len >= 1 && prompt_len < total,
            "need a prompt and a completion"
        );
        let completion_len = total - prompt_len;
        let mut cache = self.new_cache(padding);
        let hidden = self.forward_hidden(tokens.clone(), &mut cache);
        // Position t predicts token t+1: positions prompt_len-1 .. total-2.
        let hidden = hidden.narrow(1, prompt_len - 1, completion_len); // [batch, completion, d]
        CompletionLogits {
            logits: self.logits(hidden),
            targets: tokens.narrow(1, prompt_len, completion_len),
        }
    }

    /// The completion logits of a [`GroupedCompletions`] batch, running each prompt once: the
    /// prompts are prefilled as a batch of `prompts` rows, their cache is repeated to the rows
    /// that continue them (`select`, differentiable: a prompt's gradient is the sum over its
    /// rows), and only the completions are forwarded after them. The same numbers as
    /// [`LanguageModel::completion_logits`] on the concatenated sequences, with the prompt
    /// positions computed once per prompt instead of once per row.
    fn grouped_completion_logits(&self, batch: GroupedCompletions) -> CompletionLogits {
        let GroupedCompletions {
            prompts,
            padding,
            completions,
            group,
        } = batch;
        let [prompt_count, prompt_len] = prompts.dims();
        let [rows, completion_len] = completions.dims();
        assert!(
            prompt_len >= 1 && completion_len >= 1,
            "need a prompt and a completion"
        );
        assert_eq!(group.len(), rows, "one group index per completion row");
        assert!(
            group.iter().all(|&g| g < prompt_count),
            "a group index names no prompt"
        );
        let device = prompts.device();
        let mut cache = self.new_cache(padding);
        let prompt_hidden = self.forward_hidden(prompts, &mut cache); // [prompts, prompt_len, d]
        // The last prompt position predicts the first completion token: [rows, 1, d].
        let first = prompt_hidden
            .narrow(1, prompt_len - 1, 1)
            .select(0, row_index(&group, &device));
        let hidden = if completion_len == 1 {
            first
        } else {
            cache.select_rows(&group, &device);
            // Completion token t predicts token t+1; the last one predicts nothing.
            let inputs = completions.clone().narrow(1, 0, completion_len - 1);
            let rest = self.forward_hidden(inputs, &mut cache); // [rows, completion_len - 1, d]
            Tensor::cat(vec![first, rest], 1) // [rows, completion_len, d]
        };
        CompletionLogits {
            logits: self.logits(hidden),
            targets: completions,
        }
    }
}
