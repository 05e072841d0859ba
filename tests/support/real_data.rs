//! Where the tests of every crate find the real datasets: one file, included by each test that
//! reads them (`#[path = ".../tests/support/real_data.rs"] mod real_data;`).

use std::path::{Path, PathBuf};

/// A file of the real datasets (GSM8K, HumanEval; MIT): under `$GRPO_DATA_DIR`, else
/// `shared/data` beside the repository. Where it is absent the test is skipped with a message —
/// unless `GRPO_REQUIRE_REAL_DATA` is set (`.ci/run` sets it: CI always has the data), and then
/// the test fails rather than passing without having looked.
pub fn real_data(path: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("GRPO_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| beside_the_repository().join("shared/data"));
    let full = dir.join(path);
    if full.exists() {
        return Some(full);
    }
    assert!(
        std::env::var_os("GRPO_REQUIRE_REAL_DATA").is_none(),
        "{} is absent, and GRPO_REQUIRE_REAL_DATA is set",
        full.display()
    );
    eprintln!(
        "skipped: {} is absent (GRPO_DATA_DIR names the directory holding gsm8k/ and humaneval/)",
        full.display()
    );
    None
}

/// The directory holding the repository: above the workspace root (the including crate's
/// first ancestor with the workspace's `Cargo.lock`).
fn beside_the_repository() -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = crate_dir
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").exists())
        .unwrap_or(crate_dir);
    root.join("..")
}
