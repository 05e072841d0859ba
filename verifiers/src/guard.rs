//! Calling a verifier so that its failures stay inside one sample: a panic becomes an
//! unscorable sample, and a verifier that does not promise bounded time is abandoned when it
//! overruns its budget.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::{Sample, Score, Verifier, VerifyError};

/// Runs `verifier` on `sample`, catching panics, and — when `budget` is set and the verifier
/// is not [bounded](Verifier::is_bounded) — on a watchdog thread that is abandoned after
/// `budget`. An abandoned call keeps running in the background until it returns (Rust cannot
/// stop a thread), but training goes on without it.
pub fn verify_guarded(
    verifier: &Arc<dyn Verifier>,
    sample: &Sample<'_>,
    budget: Option<Duration>,
) -> Result<Score, VerifyError> {
    match budget {
        Some(budget) if !verifier.is_bounded() => on_watchdog(verifier, sample, budget),
        _ => catch(verifier.as_ref(), sample),
    }
}

fn catch(verifier: &dyn Verifier, sample: &Sample<'_>) -> Result<Score, VerifyError> {
    let outcome = catch_unwind(AssertUnwindSafe(|| verifier.verify(sample)))
        .unwrap_or_else(|payload| Err(VerifyError::Panicked(panic_message(payload.as_ref()))));
    match outcome {
        Ok(score) if !score.reward.is_finite() => Err(VerifyError::Other(format!(
            "verifier returned a non-finite reward {} ({})",
            score.reward, score.details
        ))),
        other => other,
    }
}

fn on_watchdog(
    verifier: &Arc<dyn Verifier>,
    sample: &Sample<'_>,
    budget: Duration,
) -> Result<Score, VerifyError> {
    // The thread may outlive this call, so it gets its own copy of the sample.
    let verifier = Arc::clone(verifier);
    let (prompt, completion) = (sample.prompt.to_owned(), sample.completion.to_owned());
    let fields: Map<String, Value> = sample.fields.clone();
    let (send, receive) = mpsc::sync_channel(1);
    let spawned = thread::Builder::new()
        .name("grpo-verifier-watchdog".into())
        .spawn(move || {
            let sample = Sample::new(&prompt, &completion, &fields);
            let _ = send.send(catch(verifier.as_ref(), &sample));
        });
    if let Err(e) = spawned {
        return Err(VerifyError::Other(format!(
            "cannot start a verifier thread: {e}"
        )));
    }
    match receive.recv_timeout(budget) {
        Ok(outcome) => outcome,
        Err(mpsc::RecvTimeoutError::Timeout) => Err(VerifyError::Timeout(budget)),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(VerifyError::Other(
            "the verifier thread ended without a result".into(),
        )),
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_owned()
    }
}
