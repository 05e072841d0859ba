//! `grpo worker --listen HOST:PORT`: serves this machine's device to a training run elsewhere
//! (burn's remote backend over WebSocket), which lists it as `ws://HOST:PORT` in `devices`.

use anyhow::{Context, Result};
use grpo::device::Backend;

#[derive(clap::Args)]
pub struct WorkerArgs {
    /// The address to listen on (`127.0.0.1:4001`; port 0 picks a free one). WebSocket is
    /// unencrypted and unauthenticated: listen on a trusted network only.
    #[arg(long)]
    listen: String,
    /// The device served.
    #[arg(long, value_enum, default_value_t)]
    device: Backend,
}

pub fn run(args: &WorkerArgs) -> Result<()> {
    let listener = std::net::TcpListener::bind(&args.listen)
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let address = listener.local_addr()?;
    // The first line out is the address to list in `devices` (a test reads it for port 0).
    println!("serving {:?} on ws://{address}", args.device);
    grpo::policy::serve_device(args.device.device()?, listener)?;
    Ok(())
}
