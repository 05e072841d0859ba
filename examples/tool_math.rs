//! Learning when to call a tool: the main job's arithmetic task with a calculator. The warm-up
//! shows a fifth of the training problems solved with one calculator call (its result played
//! through the environment and masked out of the loss) and the rest worked by hand; GRPO rolls
//! out through the tool-calling environment and keeps the route that earns reward. A control
//! arm runs the same recipe without the tool on the same steps.
//!
//! ```text
//! cargo run --release --features ndarray,wgpu --example tool_math [-- --out runs/tool_math]
//! ```
//!
//! Writes `results.json` / `results.md` (accuracy per split with and without the tool, tool
//! calls per greedy episode), metrics, completions (whole transcripts) and charts —
//! `tools.png` (tool calls per episode and failed calls per call over GRPO steps),
//! `accuracy.png`, `reward.png` — into the run directory, the control's under `no_env/`. The
//! recipe is `examples/configs/tool_math.toml` (`grpo train --config …` runs the same).

mod common;

fn main() -> anyhow::Result<()> {
    common::example_main(
        include_str!("configs/tool_math.toml"),
        "examples/configs/tool_math.toml",
    )?;
    Ok(())
}
