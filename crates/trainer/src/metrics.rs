//! Metrics: one JSON object per step (TRL's names), appended to `metrics.jsonl`.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Result, TrainerError};

/// One step's numbers, by name (`reward`, `kl`, `clip_ratio/region_mean`, …). Sorted, so the
/// JSON lines compare byte for byte.
pub type Metrics = BTreeMap<String, f64>;

/// An append-only JSONL log whose lines carry a `step`.
pub struct JsonlLog {
    path: PathBuf,
    file: File,
}

impl JsonlLog {
    /// Opens `path` for appending, first dropping lines whose `step` is past `keep_through`
    /// (what a run resumed from that step will write again). The cut is atomic.
    pub fn open(path: &Path, keep_through: Option<usize>) -> Result<JsonlLog> {
        if let Some(last) = keep_through
            && path.exists()
        {
            let reader = BufReader::new(File::open(path).map_err(|e| TrainerError::io(path, e))?);
            let mut file = grpo_base::AtomicFile::create(path)?;
            for line in reader.lines() {
                let line = line.map_err(|e| TrainerError::io(path, e))?;
                let step = serde_json::from_str::<Value>(&line)
                    .ok()
                    .and_then(|v| v.get("step").and_then(Value::as_f64));
                if step.is_some_and(|s| s <= last as f64) {
                    writeln!(file.writer(), "{line}").map_err(|e| TrainerError::io(path, e))?;
                }
            }
            file.commit()?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| TrainerError::io(path, e))?;
        Ok(JsonlLog {
            path: path.to_owned(),
            file,
        })
    }

    /// Appends one line and flushes it.
    pub fn write(&mut self, value: &impl serde::Serialize) -> Result<()> {
        let mut line = serde_json::to_vec(value).expect("metrics serialize");
        line.push(b'\n');
        self.file
            .write_all(&line)
            .map_err(|e| TrainerError::io(&self.path, e))
    }
}

/// The numbers of a metrics JSONL file (what a run's [`JsonlLog`] wrote), one map per line;
/// non-numeric values are left out.
pub fn read_metrics(path: &Path) -> Result<Vec<Metrics>> {
    let text = std::fs::read_to_string(path).map_err(|e| TrainerError::io(path, e))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let object: serde_json::Map<String, Value> =
                serde_json::from_str(l).map_err(|e| TrainerError::Malformed {
                    path: path.to_owned(),
                    line: i + 1,
                    message: format!("not a JSON object: {e}"),
                })?;
            Ok(object
                .into_iter()
                .filter_map(|(k, v)| v.as_f64().map(|v| (k, v)))
                .collect())
        })
        .collect()
}

/// Mean and (population) standard deviation, as TRL logs per-verifier rewards.
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}
