//! `grpo sample --model DIR --prompt TEXT`: completions from a model, for a look or a script.

use std::path::PathBuf;

use anyhow::{Context, Result};
use grpo_policy::{ByteTokenizer, CausalLm, HfTokenizer, Tokenizer};
use grpo_sampler::{Sampler, SamplingConfig};
use serde_json::json;

use crate::device::Backend;

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

/// The model directory's tokenizer: its `tokenizer.json`, or bytes for our from-scratch models.
fn tokenizer(dir: &std::path::Path, model: &CausalLm) -> Result<Box<dyn Tokenizer>> {
    if dir.join("tokenizer.json").exists() {
        return Ok(Box::new(HfTokenizer::from_dir(dir)?));
    }
    anyhow::ensure!(
        model.config().vocab_size >= ByteTokenizer::VOCAB_SIZE,
        "{} has no tokenizer.json and its vocabulary ({}) is too small for the byte tokenizer",
        dir.display(),
        model.config().vocab_size
    );
    Ok(Box::new(ByteTokenizer))
}

pub fn run(args: &SampleArgs) -> Result<()> {
    let device = args.device.device()?;
    let model = CausalLm::load(&args.model, &device)
        .with_context(|| format!("cannot load {}", args.model.display()))?;
    let tokenizer = tokenizer(&args.model, &model)?;
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
