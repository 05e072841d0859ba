//! The readers and the deduplicator on the real datasets (found as
//! `tests/support/real_data.rs` says).

#[path = "../../../tests/support/real_data.rs"]
mod support;

use grpo_data::{Decision, DedupConfig, Deduplicator, OnMalformed, read_gsm8k, read_humaneval};

#[test]
fn gsm8k_reads_every_row_with_a_numeric_answer() {
    let (Some(train), Some(test)) = (
        support::real_data("gsm8k/train.jsonl"),
        support::real_data("gsm8k/test.jsonl"),
    ) else {
        return;
    };
    let train = read_gsm8k(train, OnMalformed::Fail).unwrap();
    let test = read_gsm8k(test, OnMalformed::Fail).unwrap();
    assert_eq!((train.len(), test.len()), (7473, 1319));
    for row in train.iter().chain(&test) {
        let answer = row.get("answer").unwrap().as_str().unwrap();
        assert!(answer.parse::<f64>().is_ok(), "{answer}");
        assert!(
            !row.get("solution")
                .unwrap()
                .as_str()
                .unwrap()
                .contains("####")
        );
    }
    assert_eq!(train[0].get("answer").unwrap(), "72");
    assert!(train[0].prompt().starts_with("Natalia sold clips"));
}

#[test]
fn humaneval_reads_all_164_problems() {
    let Some(path) = support::real_data("humaneval/HumanEval.jsonl.gz") else {
        return;
    };
    let rows = read_humaneval(path, OnMalformed::Fail).unwrap();
    assert_eq!(rows.len(), 164);
    assert_eq!(rows[0].get("task_id").unwrap(), "HumanEval/0");
    assert_eq!(rows[0].get("entry_point").unwrap(), "has_close_elements");
    assert!(rows.iter().all(|r| {
        r.get("test")
            .unwrap()
            .as_str()
            .unwrap()
            .contains("def check(")
    }));
}

/// A tiny deterministic generator, so the injected edits are the same on every run.
struct Lcg(u64);
impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// A copy of `text` re-worded the way scraped duplicates are: white space always, then
/// punctuation and a one-word edit each with some probability.
fn reword(text: &str, rng: &mut Lcg) -> String {
    let mut words: Vec<String> = text.split(' ').map(str::to_owned).collect();
    let at = rng.below(words.len());
    words[at] = format!("{}\n", words[at]);
    let at = rng.below(words.len());
    words[at] = format!(" {}", words[at]);
    if rng.below(2) == 0 {
        let at = rng.below(words.len());
        let word = &mut words[at];
        match word.pop() {
            Some(c) if ",.?!".contains(c) => {}
            Some(c) => {
                word.push(c);
                word.push(',');
            }
            None => {}
        }
    }
    if rng.below(3) != 0 {
        const OTHERS: [&str; 6] = ["apples", "Tom", "bought", "three", "every", "garden"];
        let at = rng.below(words.len());
        match rng.below(3) {
            0 => words[at] = OTHERS[rng.below(OTHERS.len())].to_owned(),
            1 if words.len() > 1 => {
                words.remove(at);
            }
            _ => words.insert(at, OTHERS[rng.below(OTHERS.len())].to_owned()),
        }
    }
    words.join(" ")
}

/// The bar: GSM8K train with 2,000 injected near duplicates, each placed somewhere after
/// its original; at least 95% of the injected ones go, fewer than 1% of the originals do.
#[test]
fn dedup_removes_injected_near_duplicates_of_gsm8k() {
    let Some(train) = support::real_data("gsm8k/train.jsonl") else {
        return;
    };
    let originals = read_gsm8k(train, OnMalformed::Fail).unwrap();
    let mut rng = Lcg(2024);
    // (sort key, text, original index or None for a copy)
    let mut rows: Vec<(f64, String, bool)> = originals
        .iter()
        .enumerate()
        .map(|(i, r)| (i as f64, r.prompt().to_owned(), true))
        .collect();
    for _ in 0..2000 {
        let i = rng.below(originals.len());
        let after = i as f64 + 0.5 + rng.below(originals.len() - i) as f64;
        rows.push((after, reword(originals[i].prompt(), &mut rng), false));
    }
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut dedup = Deduplicator::new(DedupConfig::default()).unwrap();
    let (mut originals_removed, mut copies_removed) = (0, 0);
    for (_, text, original) in &rows {
        let removed = dedup.check(text) != Decision::Kept;
        if removed && *original {
            originals_removed += 1;
        } else if removed {
            copies_removed += 1;
        }
    }
    let report = dedup.report();
    eprintln!(
        "{report:?}: {copies_removed}/2000 copies and {originals_removed}/7473 originals removed"
    );
    assert!(
        copies_removed >= 1900,
        "only {copies_removed} of 2000 injected removed"
    );
    assert!(
        originals_removed < 75,
        "{originals_removed} originals removed"
    );
    assert_eq!(report.rows, 9473);
    assert_eq!(
        report.exact_duplicates + report.near_duplicates,
        copies_removed + originals_removed
    );
}
