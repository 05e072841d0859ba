//! Writes that appear whole or not at all: the content goes to a hidden temporary path beside
//! the target, is flushed to disk, and is renamed over the target. A crash mid-write leaves the
//! old file (or nothing) in place, never half of the new one.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// An atomic write that failed: the path it was writing and the I/O error.
#[derive(Debug)]
pub struct WriteError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot write {}: {}", self.path.display(), self.source)
    }
}

impl std::error::Error for WriteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

fn fail(path: &Path) -> impl FnOnce(std::io::Error) -> WriteError + '_ {
    move |source| WriteError {
        path: path.to_owned(),
        source,
    }
}

/// The temporary path an atomic write of `target` fills: hidden, beside it (a rename does not
/// cross file systems), named after this process (two writers never share one), and ending in
/// the target's extension (writers such as `plotters` choose the format by it).
pub fn temp_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let extension = target
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.tmp-{}{extension}", std::process::id()))
}

fn remove(path: &Path) {
    let _ = std::fs::remove_file(path).or_else(|_| std::fs::remove_dir_all(path));
}

/// Puts `target` in place through `fill`, which writes a file *or a directory* at the path it
/// is given; then a file is synced and renamed over `target`. On any error the temporary path
/// is removed and `target` is untouched. A directory cannot be renamed over a non-empty one,
/// so an existing directory `target` is removed just before the rename.
pub fn replace<E: From<WriteError>>(
    target: &Path,
    fill: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<(), E> {
    let temp = temp_path(target);
    remove(&temp);
    let outcome = fill(&temp).and_then(|()| {
        if temp.is_file() {
            File::open(&temp)
                .and_then(|f| f.sync_all())
                .map_err(fail(&temp))?;
        } else if target.is_dir() {
            std::fs::remove_dir_all(target).map_err(fail(target))?;
        }
        std::fs::rename(&temp, target).map_err(fail(target))?;
        Ok(())
    });
    if outcome.is_err() {
        remove(&temp);
    }
    outcome
}

/// A file being written; [`AtomicFile::commit`] puts it in place. Dropped without a commit,
/// the temporary file is removed and the target is left as it was.
pub struct AtomicFile {
    target: PathBuf,
    temp: PathBuf,
    writer: Option<BufWriter<File>>,
}

impl AtomicFile {
    pub fn create(target: impl AsRef<Path>) -> Result<AtomicFile, WriteError> {
        let target = target.as_ref().to_owned();
        let temp = temp_path(&target);
        let file = File::create(&temp).map_err(fail(&temp))?;
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
    pub fn commit(mut self) -> Result<(), WriteError> {
        let writer = self.writer.take().expect("present until commit");
        let file = writer
            .into_inner()
            .map_err(|e| fail(&self.temp)(e.into_error()))?;
        file.sync_all().map_err(fail(&self.temp))?;
        std::fs::rename(&self.temp, &self.target).map_err(fail(&self.target))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_committed_file_replaces_the_old_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        std::fs::write(&path, "old").unwrap();
        let mut file = AtomicFile::create(&path).unwrap();
        file.writer().write_all(b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        file.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(listing(dir.path()), ["a.txt"]);
    }

    #[test]
    fn an_uncommitted_file_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        std::fs::write(&path, "old").unwrap();
        let mut file = AtomicFile::create(&path).unwrap();
        file.writer().write_all(b"half").unwrap();
        drop(file);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(listing(dir.path()), ["a.txt"]);
    }

    #[test]
    fn replace_keeps_the_target_when_fill_fails() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chart.png");
        std::fs::write(&path, "old").unwrap();
        let outcome: Result<(), WriteError> = replace(&path, |temp| {
            assert!(temp.to_string_lossy().ends_with(".png"), "{temp:?}");
            std::fs::write(temp, "half").unwrap();
            Err(WriteError {
                path: temp.to_owned(),
                source: std::io::Error::other("disk full"),
            })
        });
        assert!(outcome.unwrap_err().to_string().contains("disk full"));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(listing(dir.path()), ["chart.png"]);
    }

    #[test]
    fn replace_puts_a_directory_over_an_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("checkpoint-000002");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("stale"), "x").unwrap();
        replace(&target, |temp| {
            std::fs::create_dir(temp).map_err(fail(temp))?;
            std::fs::write(temp.join("model"), "weights").map_err(fail(temp))
        })
        .unwrap();
        assert_eq!(listing(&target), ["model"]);
        assert_eq!(listing(dir.path()), ["checkpoint-000002"]);
    }
}
