//! Streaming JSONL: rows are read one line at a time (a 1 GB file is never held whole), each
//! error names its file and line, and `.gz` files are decompressed on the fly. Written JSONL
//! appears whole or not at all.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use grpo_base::AtomicFile;
use serde_json::{Map, Value};

use crate::error::{DataError, Result};
use crate::row::Row;

/// What to do with a line that is not a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnMalformed {
    /// Stop with an error naming the file and line (the default: nothing is lost silently).
    #[default]
    Fail,
    /// Skip it and count it ([`JsonlReader::skipped`]).
    Skip,
}

/// A line that was skipped under [`OnMalformed::Skip`], and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    pub line: u64,
    pub message: String,
}

/// Turns one line's JSON object into a row; `Err` is the message the line's error shows.
pub type Convert = fn(Map<String, Value>) -> Result<Row, String>;

/// An iterator over the rows of a JSONL file. Blank lines are not rows and not errors.
pub struct JsonlReader {
    path: PathBuf,
    convert: Convert,
    lines: Box<dyn BufRead + Send>,
    line: u64,
    offset: u64,
    on_malformed: OnMalformed,
    skipped: Vec<Skipped>,
    buffer: Vec<u8>,
    done: bool,
}

/// A row together with where it came from; what [`JsonlReader::next_located`] yields.
#[derive(Debug, Clone)]
pub struct Located {
    pub row: Row,
    /// 1-based line number.
    pub line: u64,
    /// Byte offset of the line's start in the (decompressed) stream, and its length.
    pub offset: u64,
    pub len: u64,
}

impl JsonlReader {
    /// Opens `path`; a name ending in `.gz` is read through a gzip decoder.
    pub fn open(path: impl AsRef<Path>, on_malformed: OnMalformed) -> Result<JsonlReader> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| DataError::io(path, e))?;
        let reader: Box<dyn Read + Send> = if is_gzip(path) {
            Box::new(MultiGzDecoder::new(file))
        } else {
            Box::new(file)
        };
        Ok(Self::new(
            BufReader::with_capacity(1 << 16, reader),
            path,
            on_malformed,
        ))
    }

    /// Reads rows from any buffered reader; `name` is what errors call it.
    pub fn new(
        lines: impl BufRead + Send + 'static,
        name: impl Into<PathBuf>,
        on_malformed: OnMalformed,
    ) -> JsonlReader {
        JsonlReader {
            path: name.into(),
            convert: Row::new,
            lines: Box::new(lines),
            line: 0,
            offset: 0,
            on_malformed,
            skipped: Vec::new(),
            buffer: Vec::new(),
            done: false,
        }
    }

    /// Reads rows of another shape (a GSM8K or HumanEval line) through `convert`.
    pub fn converting(mut self, convert: Convert) -> JsonlReader {
        self.convert = convert;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The lines skipped so far under [`OnMalformed::Skip`].
    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }

    /// The next row with its line number and byte span; `None` at the end of the file.
    pub fn next_located(&mut self) -> Option<Result<Located>> {
        while !self.done {
            self.buffer.clear();
            let read = match self.lines.read_until(b'\n', &mut self.buffer) {
                Ok(read) => read as u64,
                Err(error) => {
                    self.done = true;
                    return Some(Err(DataError::io(&self.path, error)));
                }
            };
            if read == 0 {
                self.done = true;
                break;
            }
            self.line += 1;
            let offset = self.offset;
            self.offset += read;
            let parsed = match std::str::from_utf8(&self.buffer) {
                Ok(text) if text.trim().is_empty() => continue,
                Ok(text) => crate::row::parse_object(text).and_then(self.convert),
                Err(error) => Err(format!("not valid UTF-8: {error}")),
            };
            match parsed {
                Ok(row) => {
                    return Some(Ok(Located {
                        row,
                        line: self.line,
                        offset,
                        len: read,
                    }));
                }
                Err(message) => match self.on_malformed {
                    OnMalformed::Fail => {
                        self.done = true;
                        return Some(Err(DataError::line(&self.path, self.line, message)));
                    }
                    OnMalformed::Skip => self.skipped.push(Skipped {
                        line: self.line,
                        message,
                    }),
                },
            }
        }
        None
    }
}

impl Iterator for JsonlReader {
    type Item = Result<Row>;
    fn next(&mut self) -> Option<Result<Row>> {
        self.next_located().map(|r| r.map(|located| located.row))
    }
}

/// Reads every row of `path` into memory (fine for datasets of a few hundred MB; for larger
/// ones [`crate::Dataset::index_file`] keeps only offsets).
pub fn read_jsonl(path: impl AsRef<Path>, on_malformed: OnMalformed) -> Result<Vec<Row>> {
    JsonlReader::open(path, on_malformed)?.collect()
}

pub(crate) fn is_gzip(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "gz")
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
    Ok(file.commit()?)
}

/// One row as one JSON line.
pub fn write_row(out: &mut impl Write, row: &Row) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, row.fields())?;
    out.write_all(b"\n")
}
