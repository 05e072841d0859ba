//! Choosing the burn device from the command line: `--device flex|ndarray|wgpu`.

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
        match self {
            #[cfg(feature = "flex")]
            Backend::Flex => Ok(Device::flex()),
            #[cfg(feature = "ndarray")]
            #[allow(deprecated)]
            // burn 0.22 prefers flex; ndarray is kept for its users
            Backend::Ndarray => Ok(Device::ndarray()),
            #[cfg(feature = "wgpu")]
            Backend::Wgpu => Ok(Device::wgpu(
                grpo_policy::burn::tensor::DeviceKind::DefaultDevice,
            )),
            #[allow(unreachable_patterns)]
            other => anyhow::bail!(
                "the {other:?} backend is not compiled in: build with `--features {}`",
                format!("{other:?}").to_lowercase()
            ),
        }
    }
}
