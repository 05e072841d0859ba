//! TinyZero's countdown with the expression verifier (each number once) and the R1 format check,
//! from nothing. See `examples/configs/countdown.toml` for the recipe and how to run it; the same
//! runs with `grpo train --config examples/configs/countdown.toml`.

mod common;

fn main() -> anyhow::Result<()> {
    common::example_main(
        include_str!("configs/countdown.toml"),
        "examples/configs/countdown.toml",
    )?;
    Ok(())
}
