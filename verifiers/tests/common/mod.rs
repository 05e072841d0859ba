//! What the verifier tests share.

/// A file of the real datasets (GSM8K, HumanEval; MIT): under `$GRPO_DATA_DIR`, else
/// `shared/data` beside the repository. Where it is absent the test is skipped with a message —
/// unless `GRPO_REQUIRE_REAL_DATA` is set (`.ci/run` sets it: CI always has the data), and then
/// the test fails rather than passing without having looked.
pub fn real_data(path: &str) -> Option<std::path::PathBuf> {
    let dir = std::env::var_os("GRPO_DATA_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data")
        });
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
