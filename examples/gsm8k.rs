//! GRPO on GSM8K for a Hugging Face model directory (`-- --model DIR`, required).
//! See `examples/configs/gsm8k.toml` for the recipe and how to run it; the same
//! runs with `grpo train --config examples/configs/gsm8k.toml`.

mod common;

fn main() -> anyhow::Result<()> {
    common::example_main(
        include_str!("configs/gsm8k.toml"),
        "examples/configs/gsm8k.toml",
    )?;
    Ok(())
}
