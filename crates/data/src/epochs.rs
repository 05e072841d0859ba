//! The order rows are served in: a fresh seeded shuffle each epoch, and a cursor — (epoch,
//! position) — that a checkpoint saves so a resumed run continues with exactly the rows the
//! interrupted one would have seen next.

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use grpo_base::SplitMix64;

/// Where a pass over the data stands: the next row served is `position` in epoch `epoch`'s
/// order. Small and plain, for checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Cursor {
    pub epoch: u64,
    pub position: u64,
}

/// An endless stream of row indices over `len` rows, epoch after epoch.
#[derive(Debug, Clone)]
pub struct Epochs {
    len: usize,
    seed: u64,
    shuffle: bool,
    cursor: Cursor,
    /// The current epoch's order.
    order: Vec<usize>,
}

impl Epochs {
    /// Epochs over `len` rows; with `shuffle`, each epoch's order is a permutation drawn from
    /// (`seed`, epoch number), so epochs differ and a run is reproducible.
    pub fn new(len: usize, seed: u64, shuffle: bool) -> Result<Epochs> {
        Epochs::resume(len, seed, shuffle, Cursor::default())
    }

    /// Continues from a saved cursor.
    pub fn resume(len: usize, seed: u64, shuffle: bool, cursor: Cursor) -> Result<Epochs> {
        if len == 0 {
            return Err(DataError::config("dataset", "has no rows"));
        }
        if cursor.position > len as u64 {
            return Err(DataError::Cursor(format!(
                "position {} is past the end of a {len}-row epoch",
                cursor.position
            )));
        }
        let mut epochs = Epochs {
            len,
            seed,
            shuffle,
            cursor,
            order: Vec::new(),
        };
        epochs.order = epochs.order_of(cursor.epoch);
        Ok(epochs)
    }

    fn order_of(&self, epoch: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.len).collect();
        if self.shuffle {
            SplitMix64::keyed(self.seed, &[epoch]).shuffle(&mut order);
        }
        order
    }

    pub fn cursor(&self) -> Cursor {
        self.cursor
    }

    /// The next row index.
    pub fn next_index(&mut self) -> usize {
        if self.cursor.position == self.len as u64 {
            self.cursor = Cursor {
                epoch: self.cursor.epoch + 1,
                position: 0,
            };
            self.order = self.order_of(self.cursor.epoch);
        }
        let index = self.order[self.cursor.position as usize];
        self.cursor.position += 1;
        index
    }

    /// The next `n` row indices; a batch may run across an epoch boundary (no row is dropped).
    pub fn next_batch(&mut self, n: usize) -> Vec<usize> {
        (0..n).map(|_| self.next_index()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_epoch_is_a_permutation_and_epochs_differ() {
        let mut epochs = Epochs::new(50, 7, true).unwrap();
        let first = epochs.next_batch(50);
        let second = epochs.next_batch(50);
        for epoch in [&first, &second] {
            let mut sorted = epoch.clone();
            sorted.sort();
            assert_eq!(sorted, (0..50).collect::<Vec<_>>());
        }
        assert_ne!(first, second);
        assert_eq!(
            epochs.cursor(),
            Cursor {
                epoch: 1,
                position: 50
            }
        );
        assert_eq!(
            Epochs::new(4, 7, false).unwrap().next_batch(6),
            [0, 1, 2, 3, 0, 1]
        );
    }

    #[test]
    fn a_resumed_cursor_continues_exactly() {
        let mut straight = Epochs::new(13, 3, true).unwrap();
        let expected = straight.next_batch(40);
        let mut first = Epochs::new(13, 3, true).unwrap();
        let mut seen = first.next_batch(17);
        let saved = serde_json::to_string(&first.cursor()).unwrap();
        let mut resumed =
            Epochs::resume(13, 3, true, serde_json::from_str(&saved).unwrap()).unwrap();
        seen.extend(resumed.next_batch(23));
        assert_eq!(seen, expected);
    }

    #[test]
    fn bad_cursors_and_empty_data_are_errors() {
        assert!(Epochs::new(0, 0, true).is_err());
        let cursor = Cursor {
            epoch: 0,
            position: 11,
        };
        assert!(Epochs::resume(10, 0, true, cursor).is_err());
    }
}
