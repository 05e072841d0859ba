//! Prompt + completion pairs as token tensors: prompts left-padded to a common length (so
//! every completion starts at the same column), completions right-padded and masked. SFT packs
//! whole sequences ([`pack`]); GRPO packs each prompt once with the rows that continue it
//! ([`pack_groups`]).

use grpo_policy::GroupedCompletions;
use grpo_policy::burn::tensor::{Device, Int, Tensor, TensorData};

/// A micro-batch ready for `CausalLm::completion_logprobs`.
pub struct Packed {
    /// `[rows, prompt_len + completion_len]`.
    pub tokens: Tensor<2, Int>,
    pub prompt_len: usize,
    /// Left padding of each row.
    pub padding: Vec<usize>,
    /// `[rows, completion_len]`: 1 where a completion token takes part in the loss.
    pub mask: Tensor<2>,
}

/// Packs `(prompt, completion, in_loss)` rows, `in_loss` saying of each completion token
/// whether it takes part in the loss (an environment's tokens in a demonstration do not).
pub fn pack(rows: &[(&[u32], &[u32], &[bool])], pad: u32, device: &Device) -> Packed {
    let prompt_len = rows.iter().map(|r| r.0.len()).max().unwrap_or(1).max(1);
    let completion_len = rows.iter().map(|r| r.1.len()).max().unwrap_or(1).max(1);
    let width = prompt_len + completion_len;
    let mut tokens = Vec::with_capacity(rows.len() * width);
    let mut mask = Vec::with_capacity(rows.len() * completion_len);
    let mut padding = Vec::with_capacity(rows.len());
    for (prompt, completion, in_loss) in rows {
        let left = prompt_len - prompt.len();
        padding.push(left);
        tokens.extend(std::iter::repeat_n(pad as i64, left));
        tokens.extend(prompt.iter().map(|&t| t as i64));
        tokens.extend(completion.iter().map(|&t| t as i64));
        tokens.extend(std::iter::repeat_n(
            pad as i64,
            completion_len - completion.len(),
        ));
        debug_assert_eq!(completion.len(), in_loss.len());
        mask.extend(in_loss.iter().map(|&on| if on { 1.0f32 } else { 0.0 }));
        mask.extend(std::iter::repeat_n(0.0, completion_len - completion.len()));
    }
    Packed {
        tokens: Tensor::from_data(TensorData::new(tokens, [rows.len(), width]), device),
        prompt_len,
        padding,
        mask: Tensor::from_data(TensorData::new(mask, [rows.len(), completion_len]), device),
    }
}

/// A GRPO micro-batch ready for `CausalLm::grouped_completion_logits`.
pub struct PackedGroups {
    pub batch: GroupedCompletions,
    /// `[rows, completion_len]`: 1 where a completion token takes part in the loss.
    pub mask: Tensor<2>,
}

/// Packs `(prompt, completion, from_model, in_loss)` rows whose prompts repeat: each distinct
/// prompt (by its index in `prompts`) is packed once, in order of first use. The mask is 1 on
/// the completion tokens the model sampled (`from_model`; an environment's are context only),
/// and all 0 for a row not `in_loss`.
pub fn pack_groups(
    prompts: &[Vec<u32>],
    rows: &[(usize, &[u32], &[bool], bool)],
    pad: u32,
    device: &Device,
) -> PackedGroups {
    let mut used: Vec<usize> = Vec::new(); // indices into `prompts`, in order of first use
    let group: Vec<usize> = rows
        .iter()
        .map(|&(prompt, _, _, _)| {
            used.iter().position(|&u| u == prompt).unwrap_or_else(|| {
                used.push(prompt);
                used.len() - 1
            })
        })
        .collect();
    let prompt_len = used
        .iter()
        .map(|&p| prompts[p].len())
        .max()
        .unwrap_or(1)
        .max(1);
    let mut prompt_tokens = Vec::with_capacity(used.len() * prompt_len);
    let mut padding = Vec::with_capacity(used.len());
    for &p in &used {
        let left = prompt_len - prompts[p].len();
        padding.push(left);
        prompt_tokens.extend(std::iter::repeat_n(pad as i64, left));
        prompt_tokens.extend(prompts[p].iter().map(|&t| t as i64));
    }
    let completion_len = rows.iter().map(|r| r.1.len()).max().unwrap_or(1).max(1);
    let mut completions = Vec::with_capacity(rows.len() * completion_len);
    let mut mask = Vec::with_capacity(rows.len() * completion_len);
    for &(_, completion, from_model, in_loss) in rows {
        completions.extend(completion.iter().map(|&t| t as i64));
        completions.extend(std::iter::repeat_n(
            pad as i64,
            completion_len - completion.len(),
        ));
        mask.extend((0..completion_len).map(|t| {
            if in_loss && t < completion.len() && from_model[t] {
                1.0f32
            } else {
                0.0
            }
        }));
    }
    PackedGroups {
        batch: GroupedCompletions {
            prompts: Tensor::from_data(
                TensorData::new(prompt_tokens, [used.len(), prompt_len]),
                device,
            ),
            padding,
            completions: Tensor::from_data(
                TensorData::new(completions, [rows.len(), completion_len]),
                device,
            ),
            group,
        },
        mask: Tensor::from_data(TensorData::new(mask, [rows.len(), completion_len]), device),
    }
}

/// A `[rows, 1]` column.
pub fn column(values: &[f32], device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values.to_vec(), [values.len(), 1]), device)
}
