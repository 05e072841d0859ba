//! Choosing each row's next token, on the device: only the chosen ids and their log-probs
//! come back to the host.

use grpo_policy::burn::tensor::{Int, Tensor, TensorData};
use grpo_policy::logsumexp;

use crate::SamplingConfig;

/// The next token of each row of `logits` `[rows, vocab]`, and its log-probability under
/// `softmax(logits / T)` — after temperature, *before* top-k/top-p/min-p truncation, which is
/// the distribution the trainer's log-probs are computed under. Greedy (`T = 0`) takes the
/// argmax and reports its log-prob at `T = 1`.
///
/// Sampling is by inverse CDF: row r takes the first token (in descending-probability order
/// when a filter is on) whose cumulative kept mass exceeds `uniforms[r]` × the kept total.
pub fn choose(
    logits: Tensor<2>,
    uniforms: &[f32],
    config: &SamplingConfig,
) -> (Vec<u32>, Vec<f32>) {
    let [rows, vocab] = logits.dims();
    let device = logits.device();
    let temperature = if config.temperature == 0.0 {
        1.0
    } else {
        config.temperature
    };
    let z = logits.div_scalar(temperature).unsqueeze_dim::<3>(0); // [1, rows, vocab]
    let logp = (z.clone() - logsumexp(z)).squeeze_dim::<2>(0); // [rows, vocab]

    let token: Tensor<2, Int> = if config.temperature == 0.0 {
        logp.clone().argmax(1) // [rows, 1]
    } else {
        let probs = logp.clone().exp();
        let (ranked, order) = if config.filters() {
            let (sorted, order) = probs.sort_descending_with_indices(1);
            (keep_filtered(sorted, config), Some(order))
        } else {
            (probs, None)
        };
        let cumulative = ranked.cumsum(1); // [rows, vocab]
        let total = cumulative.clone().narrow(1, vocab - 1, 1); // [rows, 1]
        let u =
            Tensor::<2>::from_data(TensorData::new(uniforms.to_vec(), [rows, 1]), &device) * total;
        let position = cumulative
            .lower_equal(u.expand([rows, vocab]))
            .int()
            .sum_dim(1)
            .clamp_max((vocab - 1) as i64); // [rows, 1]
        match order {
            Some(order) => order.gather(1, position),
            None => position,
        }
    };
    let chosen_logp = logp.gather(1, token.clone()); // [rows, 1]
    // One read-back per step: ids (exact in f32 below 2²⁴) and log-probs side by side.
    let both = Tensor::cat(vec![token.float(), chosen_logp], 1); // [rows, 2]
    let values: Vec<f32> = both
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32 data");
    let ids = values.chunks(2).map(|pair| pair[0] as u32).collect();
    let logprobs = values.chunks(2).map(|pair| pair[1]).collect();
    (ids, logprobs)
}

/// Zeroes the probabilities (sorted descending, `[rows, vocab]`) that top-k, top-p and min-p
/// drop. Each filter keeps at least the most likely token.
fn keep_filtered(sorted: Tensor<2>, config: &SamplingConfig) -> Tensor<2> {
    let [rows, vocab] = sorted.dims();
    let device = sorted.device();
    let mut drop = Tensor::<2>::zeros([rows, vocab], &device).greater_elem(1.0); // all false
    if config.top_k > 0 && config.top_k < vocab {
        let rank = Tensor::<1, Int>::arange(0..vocab as i64, &device)
            .reshape([1, vocab])
            .expand([rows, vocab]);
        drop = drop.bool_or(rank.greater_equal_elem(config.top_k as i64));
    }
    if config.top_p < 1.0 {
        // Holtzman et al. 2020: drop a token once the mass before it already reaches p.
        let before = sorted.clone().cumsum(1) - sorted.clone();
        drop = drop.bool_or(before.greater_equal_elem(config.top_p));
    }
    if config.min_p > 0.0 {
        let threshold = sorted
            .clone()
            .narrow(1, 0, 1)
            .mul_scalar(config.min_p)
            .expand([rows, vocab]);
        drop = drop.bool_or(sorted.clone().lower(threshold));
    }
    sorted.mask_fill(drop, 0.0)
}
