//! Reading rows: errors name the file and line, malformed lines can be skipped and counted,
//! gzip is read transparently, and a file-backed dataset reads the same rows as memory.

use std::io::Write;

use grpo_data::{DataError, Dataset, JsonlReader, OnMalformed, Row, read_jsonl, write_jsonl};

fn file_with(text: &str, suffix: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new().suffix(suffix).tempfile().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file
}

const MIXED: &str = "{\"prompt\": \"a\", \"answer\": 1}\n\n{\"prompt\": 3}\n[1, 2]\n{\"prompt\": \"b\"\n{\"answer\": 2}\n{\"prompt\": \"c\"}";

#[test]
fn a_malformed_line_is_an_error_naming_file_and_line() {
    let file = file_with(MIXED, ".jsonl");
    let error = read_jsonl(file.path(), OnMalformed::Fail).unwrap_err();
    match &error {
        DataError::Line {
            path,
            line,
            message,
        } => {
            assert_eq!(path, file.path());
            assert_eq!(*line, 3);
            assert_eq!(
                message,
                "field `prompt` must be a string or a list of messages, found a number"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        error
            .to_string()
            .starts_with(&format!("{}:3: ", file.path().display()))
    );
}

#[test]
fn malformed_lines_can_be_skipped_and_counted() {
    let file = file_with(MIXED, ".jsonl");
    let mut reader = JsonlReader::open(file.path(), OnMalformed::Skip).unwrap();
    let rows: Vec<Row> = reader.by_ref().collect::<Result<_, _>>().unwrap();
    let prompts: Vec<&str> = rows.iter().map(Row::prompt).collect();
    assert_eq!(prompts, ["a", "c"]);
    let skipped: Vec<u64> = reader.skipped().iter().map(|s| s.line).collect();
    assert_eq!(skipped, [3, 4, 5, 6]);
    assert!(
        reader.skipped()[1]
            .message
            .contains("expected a JSON object")
    );
    assert!(reader.skipped()[2].message.contains("not valid JSON"));
    assert!(
        reader.skipped()[3]
            .message
            .contains("missing field `prompt`")
    );
    assert_eq!(rows[0].get("answer").unwrap(), 1);
}

#[test]
fn invalid_utf8_is_named_too() {
    let mut file = tempfile::Builder::new()
        .suffix(".jsonl")
        .tempfile()
        .unwrap();
    file.write_all(b"{\"prompt\": \"ok\"}\n{\"prompt\": \"\xff\"}\n")
        .unwrap();
    let error = read_jsonl(file.path(), OnMalformed::Fail)
        .unwrap_err()
        .to_string();
    assert!(error.contains(":2: not valid UTF-8"), "{error}");
}

#[test]
fn gzip_is_read_transparently() {
    let rows: Vec<Row> = (0..100)
        .map(|i| Row::from_prompt(format!("p{i}")).with("i", i))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("rows.jsonl");
    write_jsonl(&plain, &rows).unwrap();
    let gz = dir.path().join("rows.jsonl.gz");
    let mut encoder = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::default(),
    );
    encoder.write_all(&std::fs::read(&plain).unwrap()).unwrap();
    encoder.finish().unwrap();
    assert_eq!(read_jsonl(&gz, OnMalformed::Fail).unwrap(), rows);
    assert_eq!(read_jsonl(&plain, OnMalformed::Fail).unwrap(), rows);
    assert_eq!(
        Dataset::index_file(&gz, OnMalformed::Fail)
            .unwrap()
            .get(42)
            .unwrap(),
        rows[42]
    );
}

#[test]
fn a_file_backed_dataset_reads_the_rows_by_offset() {
    let file = file_with(MIXED, ".jsonl");
    let data = Dataset::index_file(file.path(), OnMalformed::Skip).unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data.skipped().len(), 4);
    assert_eq!(data.get(1).unwrap().prompt(), "c");
    let all = data.get_many(&[1, 0, 1]).unwrap();
    assert_eq!(all.iter().map(Row::prompt).collect::<String>(), "cac");
    // Indexing fails on the first bad line when asked to.
    let error = Dataset::index_file(file.path(), OnMalformed::Fail)
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains(":3:"), "{error}");
}

#[test]
fn writes_are_atomic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.jsonl");
    std::fs::write(&path, "old\n").unwrap();
    write_jsonl(&path, &[Row::from_prompt("new")]).unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "{\"prompt\":\"new\"}\n"
    );
    // Replaced through a temporary file, which is gone.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}
