//! The one guard against a worker that is alive but silent: burn's remote client has no
//! request deadline, so a thread blocked on such a worker waits forever.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Ends the process when a step with workers hears nothing for `timeout`: a thread blocked on
/// a worker that is alive but stuck (burn's remote client has no request deadline; a closed
/// connection or a vanished machine fail by themselves) cannot be stopped from outside, and
/// the run's last checkpoint is whole, so the run resumes from it. Disarmed when dropped.
pub(crate) struct Watchdog {
    heard: Arc<Mutex<Instant>>,
    done: Arc<AtomicBool>,
}

impl Watchdog {
    /// Armed when `devices` (by name) has workers (`ws://…`) and `timeout_s` > 0; before
    /// they are connected, so a worker that never finishes the handshake is caught too.
    pub fn start(devices: &[String], timeout_s: u64) -> Option<Watchdog> {
        let workers: Vec<String> = devices
            .iter()
            .filter(|name| name.starts_with("ws://"))
            .cloned()
            .collect();
        if workers.is_empty() || timeout_s == 0 {
            return None;
        }
        let timeout = Duration::from_secs(timeout_s);
        let watchdog = Watchdog {
            heard: Arc::new(Mutex::new(Instant::now())),
            done: Arc::new(AtomicBool::new(false)),
        };
        let (heard, done) = (watchdog.heard.clone(), watchdog.done.clone());
        std::thread::spawn(move || {
            let tick = (timeout / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
            while !done.load(Ordering::Relaxed) {
                let silent = heard.lock().map_or(timeout, |at| at.elapsed());
                if silent >= timeout {
                    eprintln!(
                        "error: device `{}`: no answer for {timeout_s} s (device_timeout_s): the \
                         run stops here; resume it from its last checkpoint, without the worker \
                         if it is gone",
                        workers.join("` or `")
                    );
                    std::process::exit(3);
                }
                std::thread::sleep(tick);
            }
        });
        Some(watchdog)
    }

    /// Work came back: the silence starts again from now.
    pub fn heard(&self) {
        if let Ok(mut at) = self.heard.lock() {
            *at = Instant::now();
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
    }
}
