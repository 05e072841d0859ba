//! `grpo sample --model DIR --prompt TEXT`: completions from a model, for a look or a script.

use std::path::PathBuf;

use anyhow::Result;
use grpo_sampler::{Sampler, SamplingConfig};
use serde_json::json;

use grpo::device::Backend;

#[derive(clap::Args)]
pub struct SampleArgs {
    /// A Hugging Face model directory or one of our checkpoints.
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    prompt: String,
    #[arg(long, default_value_t = 1)]
    num_generations: usize,
    #[arg(long, default_value_t = 1.0)]
    temperature: f32,
    #[arg(long, default_value_t = 64)]
    max_new_tokens: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print `{"completions": [{"text", "token_ids", "finish_reason"}]}`.
    #[arg(long)]
    json: bool,
    #[arg(long, value_enum, default_value_t)]
    device: Backend,
}

pub fn run(args: &SampleArgs) -> Result<()> {
    let device = args.device.device()?;
    let (model, tokenizer) = grpo::recipe::load_model(&args.model, &device)?;
    let config = SamplingConfig {
        num_generations: args.num_generations,
        temperature: args.temperature,
        max_new_tokens: args.max_new_tokens,
        seed: args.seed,
        ..Default::default()
    };
    let rollouts = Sampler::default().sample(
        &model,
        tokenizer.as_ref(),
        std::slice::from_ref(&args.prompt),
        &config,
    )?;
    if args.json {
        let completions: Vec<_> = rollouts
            .completions
            .iter()
            .map(|c| json!({"text": c.text, "token_ids": c.token_ids, "finish_reason": c.finish_reason}))
            .collect();
        println!("{}", json!({ "completions": completions }));
    } else {
        for c in &rollouts.completions {
            println!(
                "--- completion {} ({:?}, {} tokens)",
                c.sample,
                c.finish_reason,
                c.token_ids.len()
            );
            println!("{}", c.text);
        }
    }
    Ok(())
}
