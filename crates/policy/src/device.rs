//! Devices by name, as configs and command lines write them: a backend compiled into this
//! build (`flex`, `ndarray`, `wgpu`), or `ws://HOST:PORT`, a worker process holding a device
//! on this or another machine (burn's remote backend over WebSocket; `grpo worker` serves one).
//!
//! WebSocket is unencrypted and unauthenticated: a worker belongs on a trusted network.

use burn::tensor::Device;
use burn::tensor::remote::RemoteHost;

use crate::{PolicyError, Result};

/// Whether `name` is written as a device is (without connecting to a worker): why not, if it
/// is not. What a config checks when it is read.
pub fn check_device_name(name: &str) -> std::result::Result<(), String> {
    if let Some(address) = name.strip_prefix("ws://") {
        if address.is_empty() || address.contains('/') {
            return Err("a worker is written `ws://HOST:PORT`".into());
        }
        return Ok(());
    }
    match name {
        "flex" | "ndarray" | "wgpu" => Ok(()),
        _ => Err("is not a device: flex, ndarray, wgpu, or a worker's ws://HOST:PORT".into()),
    }
}

/// The device `name` means, connecting to it when it is a worker (which fails, naming it, when
/// nothing answers there once burn's connection retries have run out).
pub fn device_by_name(name: &str) -> Result<Device> {
    let fail = |message: String| PolicyError::Device {
        name: name.to_string(),
        message,
    };
    check_device_name(name).map_err(fail)?;
    if name.starts_with("ws://") {
        return Device::remote_options(&RemoteHost::websocket(name))
            .init()
            .map_err(|e| fail(format!("cannot connect to the worker: {e}")));
    }
    match name {
        #[cfg(feature = "flex")]
        "flex" => Ok(Device::flex()),
        #[cfg(feature = "ndarray")]
        #[allow(deprecated)] // burn 0.22 prefers flex; ndarray is kept for its users
        "ndarray" => Ok(Device::ndarray()),
        #[cfg(feature = "wgpu")]
        "wgpu" => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
        _ => Err(fail(format!(
            "this build has no {name} backend: build with `--features {name}`"
        ))),
    }
}

/// Serves `device` to remote clients on `listener` until the process is stopped (Ctrl+C or
/// `SIGTERM`): a worker that [`device_by_name`]`("ws://…")` connects to. The autodiff graph
/// stays with the client; the worker runs the tensor operations.
pub fn serve_device(device: Device, listener: std::net::TcpListener) -> Result<()> {
    use burn::tensor::server::{RemoteServer, WebSocketTransport};
    let address = listener
        .local_addr()
        .map_or_else(|_| "the listener".to_string(), |a| format!("ws://{a}"));
    RemoteServer::new([device])
        .serve(WebSocketTransport::from_listener(listener))
        .map_err(|e| PolicyError::Device {
            name: address,
            message: format!("cannot serve: {e}"),
        })
}

#[cfg(test)]
mod tests {
    use super::device_by_name;

    #[test]
    fn a_name_that_is_no_device_is_an_error_naming_it() {
        for (name, says) in [
            ("tpu", "is not a device"),
            ("ws://", "ws://HOST:PORT"),
            ("ws://127.0.0.1:4001/session", "ws://HOST:PORT"),
        ] {
            let error = device_by_name(name).unwrap_err().to_string();
            assert!(
                error.contains(&format!("`{name}`")) && error.contains(says),
                "{error}"
            );
        }
        #[cfg(feature = "flex")]
        assert_eq!(
            device_by_name("flex").unwrap(),
            burn::tensor::Device::flex()
        );
    }
}
