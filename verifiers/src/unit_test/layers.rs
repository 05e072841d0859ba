//! The sandbox's isolation layers, by name: what a config's `require` lists and a runner
//! reports, on every platform (only Linux has them).

use std::collections::BTreeMap;

/// One isolation layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Layer {
    Netns,
    Pidns,
    Mountns,
    Landlock,
    Seccomp,
    Rlimits,
    UidDrop,
}

impl Layer {
    pub const ALL: [Layer; 7] = [
        Layer::Netns,
        Layer::Pidns,
        Layer::Mountns,
        Layer::Landlock,
        Layer::Seccomp,
        Layer::Rlimits,
        Layer::UidDrop,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Layer::Netns => "netns",
            Layer::Pidns => "pidns",
            Layer::Mountns => "mountns",
            Layer::Landlock => "landlock",
            Layer::Seccomp => "seccomp",
            Layer::Rlimits => "rlimits",
            Layer::UidDrop => "uid_drop",
        }
    }

    pub fn from_name(name: &str) -> Option<Layer> {
        Layer::ALL.into_iter().find(|l| l.name() == name)
    }
}

/// Which layers work here, and why the others do not.
#[derive(Debug, Clone)]
pub struct Available {
    pub layers: BTreeMap<Layer, Result<(), String>>,
    pub landlock_abi: Option<u32>,
}

impl Available {
    pub fn has(&self, layer: Layer) -> bool {
        matches!(self.layers.get(&layer), Some(Ok(())))
    }

    /// One line for a start-up report: `netns ✓, landlock ✓ (ABI 7), uid_drop ✗ (not root)`.
    pub fn describe(&self) -> String {
        self.layers
            .iter()
            .map(|(layer, state)| match state {
                Ok(()) if *layer == Layer::Landlock => {
                    format!("landlock ✓ (ABI {})", self.landlock_abi.unwrap_or(0))
                }
                Ok(()) => format!("{} ✓", layer.name()),
                Err(why) => format!("{} ✗ ({why})", layer.name()),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(not(all(target_os = "linux", not(grpo_no_sandbox))))]
impl Available {
    /// No layer at all, each for `reason`.
    pub fn none(reason: &str) -> Available {
        Available {
            layers: Layer::ALL
                .into_iter()
                .map(|l| (l, Err(reason.to_owned())))
                .collect(),
            landlock_abi: None,
        }
    }
}
