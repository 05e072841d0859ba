//! Random access to rows: held in memory, or — for a large JSONL file — as byte offsets into
//! it, so only 12 bytes per row stay resident and a row is read when it is asked for.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};
use crate::jsonl::{JsonlReader, OnMalformed, Skipped, is_gzip};
use crate::row::Row;

/// A dataset of prompt rows with random access by index.
pub struct Dataset {
    storage: Storage,
    skipped: Vec<Skipped>,
}

enum Storage {
    Memory(Vec<Row>),
    /// A JSONL file and the (offset, length) of each row's line in it.
    File {
        path: PathBuf,
        file: File,
        spans: Vec<(u64, u32)>,
    },
}

impl Dataset {
    pub fn from_rows(rows: Vec<Row>) -> Dataset {
        Dataset {
            storage: Storage::Memory(rows),
            skipped: Vec::new(),
        }
    }

    /// Indexes a JSONL file in one streaming pass: every line is parsed once (so a malformed
    /// one is reported now, with its line number), only its offset is kept. A `.gz` file
    /// cannot be read at an offset and is held in memory instead.
    pub fn index_file(path: impl AsRef<Path>, on_malformed: OnMalformed) -> Result<Dataset> {
        let path = path.as_ref();
        let mut reader = JsonlReader::open(path, on_malformed)?;
        if is_gzip(path) {
            let rows = reader.by_ref().collect::<Result<Vec<_>>>()?;
            let skipped = reader.skipped().to_vec();
            return Ok(Dataset {
                storage: Storage::Memory(rows),
                skipped,
            });
        }
        let mut spans = Vec::new();
        while let Some(located) = reader.next_located() {
            let located = located?;
            let len = u32::try_from(located.len)
                .map_err(|_| DataError::line(path, located.line, "line longer than 4 GiB"))?;
            spans.push((located.offset, len));
        }
        let file = File::open(path).map_err(|e| DataError::io(path, e))?;
        Ok(Dataset {
            storage: Storage::File {
                path: path.to_owned(),
                file,
                spans,
            },
            skipped: reader.skipped().to_vec(),
        })
    }

    pub fn len(&self) -> usize {
        match &self.storage {
            Storage::Memory(rows) => rows.len(),
            Storage::File { spans, .. } => spans.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Lines skipped while indexing under [`OnMalformed::Skip`].
    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }

    /// Row `index` (panics if out of range, like slice indexing). A file-backed row is read
    /// again from disk; an error means the file changed after indexing.
    pub fn get(&self, index: usize) -> Result<Row> {
        match &self.storage {
            Storage::Memory(rows) => Ok(rows[index].clone()),
            Storage::File { path, file, spans } => {
                let (offset, len) = spans[index];
                let mut bytes = vec![0; len as usize];
                file.read_exact_at(&mut bytes, offset)
                    .map_err(|e| DataError::io(path, e))?;
                let changed = |message: String| DataError::Io {
                    path: path.clone(),
                    source: std::io::Error::other(format!(
                        "row {index} at byte {offset} no longer parses ({message}); was the file changed after it was indexed?"
                    )),
                };
                let text = std::str::from_utf8(&bytes).map_err(|e| changed(e.to_string()))?;
                Row::parse(text).map_err(changed)
            }
        }
    }

    /// The rows at `indices`, in that order.
    pub fn get_many(&self, indices: &[usize]) -> Result<Vec<Row>> {
        indices.iter().map(|&i| self.get(i)).collect()
    }
}
