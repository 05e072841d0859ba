//! KV-cache decoding equals full recomputation, for left-padded batches of mixed prompt
//! lengths, and after repeating and dropping cache rows.

mod common;

use common::{devices, floats, int_tensor, max_abs_diff};
use grpo_policy::burn::module::Module;
use grpo_policy::burn::tensor::Device;
use grpo_policy::{CausalLm, LanguageModel, LmConfig, ModelCache};

const PAD: u32 = 0;

fn model(device: &Device, tied: bool) -> CausalLm {
    let mut config = LmConfig::small(61, 32, 2, 4, 80);
    config.num_key_value_heads = Some(2); // grouped-query attention on
    config.tie_word_embeddings = tied;
    device.seed(7);
    CausalLm::new(&config, device).unwrap()
}

/// Left-pads `rows` to a common width; returns the padded rows and each row's padding.
fn left_pad(rows: &[Vec<u32>]) -> (Vec<Vec<u32>>, Vec<usize>) {
    let width = rows.iter().map(Vec::len).max().unwrap();
    let padding: Vec<usize> = rows.iter().map(|r| width - r.len()).collect();
    let padded = rows
        .iter()
        .map(|r| {
            std::iter::repeat_n(PAD, width - r.len())
                .chain(r.iter().copied())
                .collect()
        })
        .collect();
    (padded, padding)
}

/// Logits of the last position of one unpadded row, by full recomputation.
fn last_logits_alone(model: &CausalLm, row: &[u32], device: &Device) -> Vec<f32> {
    let mut cache = model.new_cache(vec![0]);
    let logits = model.forward(int_tensor(&[row.to_vec()], device), &mut cache);
    let [_, seq, vocab] = logits.dims();
    floats(logits.narrow(1, seq - 1, 1).reshape([vocab]))
}

#[test]
fn cached_decoding_of_a_left_padded_batch_equals_each_row_recomputed_alone() {
    for (name, device) in devices() {
        for tied in [false, true] {
            let model = model(&device, tied);
            let prompts = vec![
                vec![5, 9, 3, 17, 2],
                vec![8, 1],
                vec![4, 4, 6, 12, 30, 7, 22],
            ];
            let continuations = [[11u32, 40, 3], [2, 2, 59], [60, 1, 9]];
            let (padded, padding) = left_pad(&prompts);
            let mut cache = model.new_cache(padding);
            let prefill = model.forward(int_tensor(&padded, &device), &mut cache);
            let [batch, width, vocab] = prefill.dims();
            let mut sequences = prompts.clone();
            let mut last = floats(prefill.narrow(1, width - 1, 1).reshape([batch * vocab]));
            for step in 0..=continuations[0].len() {
                for (row, sequence) in sequences.iter().enumerate() {
                    let alone = last_logits_alone(&model, sequence, &device);
                    let diff = max_abs_diff(&last[row * vocab..(row + 1) * vocab], &alone);
                    assert!(
                        diff <= 1e-5,
                        "{name} tied={tied} step {step} row {row}: max abs diff {diff}"
                    );
                }
                if step == continuations[0].len() {
                    break;
                }
                let next: Vec<Vec<u32>> = continuations.iter().map(|c| vec![c[step]]).collect();
                for (sequence, token) in sequences.iter_mut().zip(&next) {
                    sequence.push(token[0]);
                }
                let logits = model.forward(int_tensor(&next, &device), &mut cache);
                last = floats(logits.reshape([batch * vocab]));
            }
        }
    }
}

#[test]
fn repeated_and_dropped_rows_keep_decoding_exactly() {
    for (name, device) in devices() {
        let model = model(&device, true);
        let prompts = vec![vec![5, 9, 3], vec![8, 1, 44, 20, 19]];
        let (padded, padding) = left_pad(&prompts);
        let mut cache = model.new_cache(padding);
        model.forward(int_tensor(&padded, &device), &mut cache);
        // Prefilled once, decoded three ways: rows 0,1,2 from prompt 0 and 3,4,5 from prompt 1.
        cache.repeat_rows(3, &device);
        let first: Vec<u32> = vec![10, 11, 12, 13, 14, 15];
        let mut sequences: Vec<Vec<u32>> = (0..6).map(|i| prompts[i / 3].clone()).collect();
        for (s, t) in sequences.iter_mut().zip(&first) {
            s.push(*t);
        }
        model.forward(
            int_tensor(&first.iter().map(|t| vec![*t]).collect::<Vec<_>>(), &device),
            &mut cache,
        );
        // Rows 1 and 4 finish; the others go on.
        let kept = [0usize, 2, 3, 5];
        cache.select_rows(&kept, &device);
        let mut sequences: Vec<Vec<u32>> = kept.iter().map(|&r| sequences[r].clone()).collect();
        let second = [30u32, 31, 32, 33];
        for (s, t) in sequences.iter_mut().zip(&second) {
            s.push(*t);
        }
        let logits = model.forward(
            int_tensor(
                &second.iter().map(|t| vec![*t]).collect::<Vec<_>>(),
                &device,
            ),
            &mut cache,
        );
        let [batch, _, vocab] = logits.dims();
        let logits = floats(logits.reshape([batch * vocab]));
        for (row, sequence) in sequences.iter().enumerate() {
            let alone = last_logits_alone(&model, sequence, &device);
            let diff = max_abs_diff(&logits[row * vocab..(row + 1) * vocab], &alone);
            assert!(diff <= 1e-5, "{name} row {row}: max abs diff {diff}");
        }
    }
}

/// The three attention paths agree, on a model without GQA (where the inference path uses
/// burn's fused attention): the autodiff forward (composed attention, concatenated cache), the
/// inference forward of a whole left-padded batch (fused), and decoding one token at a time
/// from a preallocated cache written in place (composed, keys read strided from the buffer),
/// with rows repeated and dropped on the way.
#[test]
fn fused_composed_and_in_place_cached_attention_agree() {
    for (name, device) in devices() {
        let mut config = LmConfig::small(61, 32, 2, 4, 80);
        config.num_key_value_heads = Some(4);
        device.seed(8);
        let model = CausalLm::new(&config, &device).unwrap();
        let rows = vec![vec![5, 9, 3, 17, 2, 40, 41], vec![8, 1, 33, 34, 35]];
        let (padded, padding) = left_pad(&rows);
        let width = padded[0].len();

        let autodiff = device.clone().autodiff();
        let trained = model.clone().fork(&autodiff).train();
        let mut cache = trained.new_cache(padding.clone());
        let composed = floats(trained.forward(int_tensor(&padded, &autodiff), &mut cache));

        let mut cache = model.new_cache(padding.clone());
        let fused = floats(model.forward(int_tensor(&padded, &device), &mut cache));
        let diff = max_abs_diff(&composed, &fused);
        assert!(diff < 1e-5, "{name}: fused vs composed differ by {diff}");

        // Prefill 3 positions into room for the whole width, then one position at a time;
        // after the first decoded position, repeat every row twice and keep rows 3 and 0.
        let vocab = 61;
        let mut cache = model.new_decoding_cache(padding.clone(), width);
        let prefix: Vec<Vec<u32>> = padded.iter().map(|r| r[..3].to_vec()).collect();
        model.forward(int_tensor(&prefix, &device), &mut cache);
        let mut order = vec![0usize, 1];
        for at in 3..width {
            if at == 4 {
                cache.repeat_rows(2, &device); // rows 0, 0, 1, 1
                cache.select_rows(&[3, 0], &device); // rows 1, 0
                order = vec![1, 0];
            }
            let step: Vec<Vec<u32>> = order.iter().map(|&r| vec![padded[r][at]]).collect();
            let logits = floats(model.forward(int_tensor(&step, &device), &mut cache));
            for (i, &r) in order.iter().enumerate() {
                let expected = &composed[(r * width + at) * vocab..][..vocab];
                let diff = max_abs_diff(&logits[i * vocab..][..vocab], expected);
                assert!(
                    diff < 1e-5,
                    "{name}: row {r} position {at}: in place vs composed {diff}"
                );
            }
        }
        assert_eq!(cache.len(), width);
    }
}
