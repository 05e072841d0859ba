//! Duplicate removal: exact duplicates after normalisation, and near duplicates by MinHash
//! over character shingles with LSH banding (Broder 1997; Leskovec, Rajaraman & Ullman,
//! *Mining of Massive Datasets* ch. 3). The first occurrence of a text is kept.
//!
//! Memory: per kept row, one 128-bit hash and a `permutations × 4`-byte signature (512 bytes
//! by default), so a million kept rows need about half a gigabyte.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use grpo_base::{SplitMix64, mix, stable_hash};

/// Settings of [`Deduplicator`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DedupConfig {
    /// The field whose text is compared (`prompt`).
    pub field: String,
    /// Estimated Jaccard similarity of shingle sets at or above which a row is a near
    /// duplicate of an earlier one. 1.0 turns near-duplicate removal off.
    pub threshold: f64,
    /// Characters per shingle.
    pub shingle_chars: usize,
    /// MinHash signature length.
    pub permutations: usize,
    /// LSH bands; `permutations / bands` rows per band. More bands find pairs of lower
    /// similarity as candidates (each candidate is then checked against `threshold`).
    pub bands: usize,
    pub seed: u64,
}

impl Default for DedupConfig {
    fn default() -> Self {
        DedupConfig {
            field: "prompt".into(),
            threshold: 0.8,
            shingle_chars: 5,
            permutations: 128,
            bands: 32,
            seed: 0,
        }
    }
}

/// What happened to one text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    Kept,
    /// Equal after normalisation to the text checked as number `of` (0-based, in check order).
    Exact {
        of: usize,
    },
    /// Similar to the kept text number `of`, with this estimated Jaccard similarity.
    Near {
        of: usize,
        similarity: f64,
    },
}

/// Counts over everything checked so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DedupReport {
    pub rows: usize,
    pub kept: usize,
    pub exact_duplicates: usize,
    pub near_duplicates: usize,
}

/// Streaming deduplication: feed texts in order with [`Deduplicator::check`].
pub struct Deduplicator {
    config: DedupConfig,
    /// Odd multipliers and offsets of the `permutations` hash functions `a·h + b`.
    hash_functions: Vec<(u64, u64)>,
    exact: HashMap<u128, usize>,
    /// Signatures of kept texts, `permutations` values each, concatenated.
    signatures: Vec<u32>,
    /// For each kept text, its number in check order.
    kept_numbers: Vec<usize>,
    /// One table per band: band hash → kept-text slots.
    bands: Vec<HashMap<u64, Vec<u32>>>,
    report: DedupReport,
}

impl Deduplicator {
    pub fn new(config: DedupConfig) -> Result<Deduplicator> {
        if !(config.threshold > 0.0 && config.threshold <= 1.0) {
            return Err(DataError::config(
                "threshold",
                format!("must be in (0, 1], got {}", config.threshold),
            ));
        }
        if config.shingle_chars == 0 {
            return Err(DataError::config("shingle_chars", "must be at least 1"));
        }
        if config.bands == 0
            || config.permutations == 0
            || !config.permutations.is_multiple_of(config.bands)
        {
            return Err(DataError::config(
                "bands",
                format!(
                    "must divide permutations ({}), got {}",
                    config.permutations, config.bands
                ),
            ));
        }
        let mut rng = SplitMix64::keyed(config.seed, &[0xd3d0]);
        let hash_functions = (0..config.permutations)
            .map(|_| (rng.next_u64() | 1, rng.next_u64()))
            .collect();
        let bands = vec![HashMap::new(); config.bands];
        Ok(Deduplicator {
            config,
            hash_functions,
            exact: HashMap::new(),
            signatures: Vec::new(),
            kept_numbers: Vec::new(),
            bands,
            report: DedupReport::default(),
        })
    }

    pub fn config(&self) -> &DedupConfig {
        &self.config
    }

    pub fn report(&self) -> DedupReport {
        self.report
    }

    /// Decides about the next text; a kept text becomes a reference for later ones.
    pub fn check(&mut self, text: &str) -> Decision {
        let number = self.report.rows;
        self.report.rows += 1;
        let normal = normalize(text);
        let key = (stable_hash(normal.as_bytes(), 1) as u128) << 64
            | stable_hash(normal.as_bytes(), 2) as u128;
        if let Some(&of) = self.exact.get(&key) {
            self.report.exact_duplicates += 1;
            return Decision::Exact { of };
        }
        self.exact.insert(key, number);
        if self.config.threshold < 1.0 {
            let signature = self.signature(&normal);
            if let Some((of, similarity)) = self.most_similar(&signature) {
                self.report.near_duplicates += 1;
                return Decision::Near { of, similarity };
            }
            let slot = self.kept_numbers.len() as u32;
            for (band, key) in self.band_keys(&signature).into_iter().enumerate() {
                self.bands[band].entry(key).or_default().push(slot);
            }
            self.signatures.extend(signature);
        }
        self.kept_numbers.push(number);
        self.report.kept += 1;
        Decision::Kept
    }

    /// MinHash signature of the text's set of character shingles.
    fn signature(&self, normal: &str) -> Vec<u32> {
        // Byte offsets of char starts, and the end: a shingle is a slice between two of them.
        let bounds: Vec<usize> = normal
            .char_indices()
            .map(|(i, _)| i)
            .chain([normal.len()])
            .collect();
        let chars = bounds.len() - 1;
        let width = self.config.shingle_chars.min(chars.max(1));
        let mut shingles: Vec<u64> = (0..=chars.saturating_sub(width))
            .map(|start| {
                let end = bounds[(start + width).min(chars)];
                stable_hash(&normal.as_bytes()[bounds[start]..end], 3)
            })
            .collect();
        shingles.sort_unstable();
        shingles.dedup();
        self.hash_functions
            .iter()
            .map(|&(a, b)| {
                shingles
                    .iter()
                    .map(|&h| (a.wrapping_mul(h).wrapping_add(b) >> 32) as u32)
                    .min()
                    .unwrap_or(u32::MAX)
            })
            .collect()
    }

    fn band_keys(&self, signature: &[u32]) -> Vec<u64> {
        let rows = self.config.permutations / self.config.bands;
        signature
            .chunks(rows)
            .map(|band| band.iter().fold(0u64, |h, &v| mix(h ^ v as u64)))
            .collect()
    }

    /// The kept text sharing a band with `signature` that is most similar to it, if that
    /// similarity reaches the threshold.
    fn most_similar(&self, signature: &[u32]) -> Option<(usize, f64)> {
        let n = self.config.permutations;
        let mut best: Option<(u32, usize)> = None;
        let mut checked = Vec::new();
        for (band, key) in self.band_keys(signature).into_iter().enumerate() {
            for &slot in self.bands[band].get(&key).into_iter().flatten() {
                if checked.contains(&slot) {
                    continue;
                }
                checked.push(slot);
                let other = &self.signatures[slot as usize * n..(slot as usize + 1) * n];
                let equal = other.iter().zip(signature).filter(|(a, b)| a == b).count();
                if best.is_none_or(|(_, e)| equal > e) {
                    best = Some((slot, equal));
                }
            }
        }
        let (slot, equal) = best?;
        let similarity = equal as f64 / n as f64;
        (similarity >= self.config.threshold)
            .then(|| (self.kept_numbers[slot as usize], similarity))
    }
}

/// The form texts are compared in: lower case, prose punctuation (`. , ; : ! ? "` and quotes)
/// turned into spaces — except a `.` or `,` between digits, which is part of a number —, and
/// runs of white space made one space. Mathematical symbols and brackets are kept: `3+4` and
/// `3*4` are different problems.
pub fn normalize(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for (i, &c) in chars.iter().enumerate() {
        let in_number = matches!(c, '.' | ',')
            && i > 0
            && chars[i - 1].is_ascii_digit()
            && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit());
        let prose = matches!(
            c,
            '.' | ','
                | ';'
                | ':'
                | '!'
                | '?'
                | '"'
                | '\''
                | '\u{2018}'
                | '\u{2019}'
                | '\u{201C}'
                | '\u{201D}'
        );
        if c.is_whitespace() || (prose && !in_number) {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.extend(c.to_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_keeps_numbers_and_symbols() {
        assert_eq!(normalize("  Hello,\tWorld!!  "), "hello world");
        assert_eq!(normalize("It costs $1,000.50."), "it costs $1,000.50");
        assert_eq!(normalize("3+4 = ?"), "3+4 =");
        assert_ne!(normalize("3+4"), normalize("3*4"));
        assert_ne!(normalize("3.5"), normalize("35"));
        assert_eq!(normalize("don't"), normalize("don t"));
    }

    #[test]
    fn exact_near_and_distinct_texts() {
        let mut dedup = Deduplicator::new(DedupConfig::default()).unwrap();
        let original = "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?";
        assert_eq!(dedup.check(original), Decision::Kept);
        assert_eq!(
            dedup.check(&original.replace(' ', "  ").to_uppercase()),
            Decision::Exact { of: 0 }
        );
        let edited = original.replace("friends", "cousins");
        match dedup.check(&edited) {
            Decision::Near { of: 0, similarity } => assert!(similarity >= 0.8, "{similarity}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            dedup.check("Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. How much did she earn?"),
            Decision::Kept
        );
        let report = dedup.report();
        assert_eq!(
            (
                report.rows,
                report.kept,
                report.exact_duplicates,
                report.near_duplicates
            ),
            (4, 2, 1, 1)
        );
    }

    #[test]
    fn bad_settings_are_errors() {
        let bad = |config: DedupConfig| Deduplicator::new(config).err().unwrap().to_string();
        assert!(
            bad(DedupConfig {
                bands: 30,
                ..Default::default()
            })
            .contains("bands")
        );
        assert!(
            bad(DedupConfig {
                threshold: 0.0,
                ..Default::default()
            })
            .contains("threshold")
        );
    }
}
