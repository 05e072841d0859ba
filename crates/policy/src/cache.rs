//! The key/value cache, and the left padding of the rows it holds.

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::language_model::ModelCache;

/// Keys and values of every layer for the tokens seen so far, plus each row's left padding.
///
/// Rows of a batch are left-padded to a common length; `padding[row]` pad positions at the
/// start of a row are masked from attention, and the row's positions count from its first
/// real token. A cache can be re-arranged along the batch ([`ModelCache`]): `repeat_rows` to
/// decode a prefilled prompt K ways, `select_rows` to drop finished rows.
///
/// A cache made [`with_capacity`](KvCache::with_capacity) holds each layer in one buffer of
/// the final length and writes every new position into it in place, so a decoding step costs
/// no copy of what is already cached; otherwise each step concatenates (what training wants:
/// it appends once, and `cat` is differentiable).
#[derive(Debug, Clone)]
pub struct KvCache {
    /// Per layer: keys and values, each `[batch, kv_heads, len, head_dim]` — or
    /// `[batch, kv_heads, capacity, head_dim]` with positions `len..` not yet written.
    layers: Vec<Option<(Tensor<4>, Tensor<4>)>>,
    padding: Vec<usize>,
    len: usize,
    capacity: Option<usize>,
}

impl ModelCache for KvCache {
    fn batch_size(&self) -> usize {
        self.padding.len()
    }

    fn select_rows(&mut self, rows: &[usize], device: &Device) {
        let index = row_index(rows, device);
        for (keys, values) in self.layers.iter_mut().flatten() {
            *keys = keys.clone().select(0, index.clone());
            *values = values.clone().select(0, index.clone());
        }
        self.padding = rows.iter().map(|&r| self.padding[r]).collect();
    }
}

impl KvCache {
    /// An empty cache for `layers` layers and rows with the given left padding.
    pub fn new(layers: usize, padding: Vec<usize>) -> Self {
        KvCache {
            layers: vec![None; layers],
            padding,
            len: 0,
            capacity: None,
        }
    }

    /// An empty cache that preallocates room for `capacity` positions per row (for decoding
    /// without autodiff; it grows by concatenation past that).
    pub fn with_capacity(layers: usize, padding: Vec<usize>, capacity: usize) -> Self {
        KvCache {
            capacity: Some(capacity),
            ..KvCache::new(layers, padding)
        }
    }

    /// Positions held so far (pad positions included).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn padding(&self) -> &[usize] {
        &self.padding
    }

    /// The positions (for RoPE) of `new` tokens about to be appended, row-major `[batch, new]`.
    pub(crate) fn positions(&self, new: usize) -> Vec<usize> {
        let mut positions = Vec::with_capacity(self.batch_size() * new);
        for &pad in &self.padding {
            positions.extend((self.len..self.len + new).map(|t| t.saturating_sub(pad)));
        }
        positions
    }

    /// The additive attention mask for `new` tokens: `[batch, 1, new, len + new]`, 0 where a
    /// query may look, −∞ on the future and on padding.
    ///
    /// −∞, not a large finite number: `exp(−∞)` is 0 on `expf`'s fast path, where `exp(−1e9)`
    /// took glibc's underflow path (`__math_uflowf`, which also sets `errno`) for every masked
    /// score — 2% of a GRPO step. Both give exactly 0, so real queries attend as before, bit
    /// for bit. A pad query, which may see no real key, sees itself, so that no row is all −∞
    /// (softmax would be NaN and poison the gradients); its output is never used.
    pub(crate) fn mask(&self, new: usize, device: &Device) -> Tensor<4> {
        let total = self.len + new;
        let mut bias = vec![0f32; self.batch_size() * new * total];
        for (row, &pad) in self.padding.iter().enumerate() {
            for q in 0..new {
                let query_at = self.len + q;
                let line = &mut bias[(row * new + q) * total..][..total];
                for (key_at, value) in line.iter_mut().enumerate() {
                    if key_at != query_at && (key_at > query_at || key_at < pad) {
                        *value = f32::NEG_INFINITY;
                    }
                }
            }
        }
        Tensor::from_data(
            TensorData::new(bias, [self.batch_size(), 1, new, total]),
            device,
        )
    }

    /// Appends a layer's new keys and values and returns the whole sequence's,
    /// `[batch, kv_heads, len + new, head_dim]` (a view into the buffer when preallocated).
    pub(crate) fn extend(
        &mut self,
        layer: usize,
        keys: Tensor<4>,
        values: Tensor<4>,
    ) -> (Tensor<4>, Tensor<4>) {
        let [batch, kv_heads, new, head_dim] = keys.dims();
        let total = self.len + new;
        let stored = self.layers[layer].take();
        let (keys, values) = match (stored, self.capacity) {
            // Preallocated: write positions len..total in place (the buffer is uniquely held
            // between steps, so `slice_assign` does not copy it).
            (stored, Some(capacity)) if !keys.is_autodiff() => {
                let (buffer_keys, buffer_values) = match stored {
                    Some(buffers) if buffers.0.dims()[2] >= total => buffers,
                    previous => {
                        let room = capacity.max(total);
                        let device = keys.device();
                        let empty =
                            || Tensor::<4>::zeros([batch, kv_heads, room, head_dim], &device);
                        let (mut k, mut v) = (empty(), empty());
                        if let Some((old_keys, old_values)) = previous {
                            let held = [0..batch, 0..kv_heads, 0..self.len, 0..head_dim];
                            k = k.slice_assign(held.clone(), old_keys.narrow(2, 0, self.len));
                            v = v.slice_assign(held, old_values.narrow(2, 0, self.len));
                        }
                        (k, v)
                    }
                };
                let at = [0..batch, 0..kv_heads, self.len..total, 0..head_dim];
                let buffer_keys = buffer_keys.slice_assign(at.clone(), keys);
                let buffer_values = buffer_values.slice_assign(at, values);
                self.layers[layer] = Some((buffer_keys.clone(), buffer_values.clone()));
                return (
                    buffer_keys.narrow(2, 0, total),
                    buffer_values.narrow(2, 0, total),
                );
            }
            (None, _) => (keys, values),
            (Some((old_keys, old_values)), _) => (
                Tensor::cat(vec![old_keys, keys], 2),
                Tensor::cat(vec![old_values, values], 2),
            ),
        };
        self.layers[layer] = Some((keys.clone(), values.clone()));
        (keys, values)
    }

    /// Records that `new` positions were appended (after every layer has been extended).
    pub(crate) fn advance(&mut self, new: usize) {
        self.len += new;
    }
}

/// `rows` as an index tensor for `select` along the batch: `[rows.len()]`.
pub fn row_index(rows: &[usize], device: &Device) -> Tensor<1, Int> {
    let index: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
    Tensor::from_data(TensorData::new(index, [rows.len()]), device)
}
