//! Code RL from nothing: one-line Python functions scored by the sandboxed unit-test runner.
//! See `examples/configs/code_rl.toml` for the recipe and how to run it; the same
//! runs with `grpo train --config examples/configs/code_rl.toml`.

mod common;

fn main() -> anyhow::Result<()> {
    common::example_main(
        include_str!("configs/code_rl.toml"),
        "examples/configs/code_rl.toml",
    )?;
    Ok(())
}
