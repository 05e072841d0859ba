//! Files that appear whole or not at all: written to a temporary file beside the target,
//! flushed to disk, then renamed over it. A crash mid-write leaves the old file untouched.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};
use crate::row::Row;

/// A file being written; [`AtomicFile::commit`] puts it in place. Dropped without a commit,
/// the temporary file is removed and the target is left as it was.
pub struct AtomicFile {
    target: PathBuf,
    temp: PathBuf,
    writer: Option<BufWriter<File>>,
}

impl AtomicFile {
    pub fn create(target: impl AsRef<Path>) -> Result<AtomicFile> {
        let target = target.as_ref().to_owned();
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".into());
        let temp = target.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
        let file = File::create(&temp).map_err(|e| DataError::io(&temp, e))?;
        Ok(AtomicFile {
            target,
            temp,
            writer: Some(BufWriter::new(file)),
        })
    }

    pub fn writer(&mut self) -> &mut impl Write {
        self.writer.as_mut().expect("present until commit")
    }

    /// Flushes, syncs and renames the file into place.
    pub fn commit(mut self) -> Result<()> {
        let writer = self.writer.take().expect("present until commit");
        let file = writer
            .into_inner()
            .map_err(|e| DataError::io(&self.temp, e.into_error()))?;
        file.sync_all().map_err(|e| DataError::io(&self.temp, e))?;
        std::fs::rename(&self.temp, &self.target).map_err(|e| DataError::io(&self.target, e))
    }

    /// Where the writes go until the commit (for error messages).
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.writer.take().is_some() {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// Writes `rows` as JSONL to `path`, atomically.
pub fn write_jsonl<'a>(
    path: impl AsRef<Path>,
    rows: impl IntoIterator<Item = &'a Row>,
) -> Result<()> {
    let mut file = AtomicFile::create(path)?;
    for row in rows {
        write_row(file.writer(), row).map_err(|e| DataError::io(file.temp_path(), e))?;
    }
    file.commit()
}

/// One row as one JSON line.
pub fn write_row(out: &mut impl Write, row: &Row) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, row.fields())?;
    out.write_all(b"\n")
}
