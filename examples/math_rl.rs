//! The main job: a byte-level model learns arithmetic from nothing — a short SFT warm-up on the
//! training templates, then GRPO with the arithmetic verifier — and is evaluated on the
//! in-distribution test split and on three held-out splits (unseen instruction templates,
//! longer operands, unseen operator compositions), next to a control arm that spends GRPO's
//! compute on more SFT.
//!
//! ```text
//! cargo run --release --features ndarray,wgpu --example math_rl [-- --out runs/math_rl]
//! ```
//!
//! Writes `results.json`, `results.md`, metrics, completions and `reward.png` /
//! `accuracy.png` into the run directory. The recipe is `examples/configs/math_rl.toml`
//! (`grpo train --config examples/configs/math_rl.toml` runs the same).

mod common;

fn main() -> anyhow::Result<()> {
    common::example_main(
        include_str!("configs/math_rl.toml"),
        "examples/configs/math_rl.toml",
    )?;
    Ok(())
}
