//! Choosing the burn device from the command line: `--device flex|ndarray|wgpu` (a worker's
//! `ws://HOST:PORT` is named in `--devices`, by `grpo_policy::device_by_name`).

use grpo_policy::burn::tensor::Device;

/// A burn backend, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Backend {
    /// CPU, pure Rust (the default).
    #[default]
    Flex,
    /// CPU, burn's ndarray backend.
    Ndarray,
    /// GPU through wgpu (Vulkan, Metal, DX12).
    Wgpu,
}

impl Backend {
    /// The device, or an error naming the cargo feature it needs.
    pub fn device(self) -> anyhow::Result<Device> {
        Ok(grpo_policy::device_by_name(
            &format!("{self:?}").to_lowercase(),
        )?)
    }
}
