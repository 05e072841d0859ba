//! Readers for the real datasets in `../shared/data`: each turns the source's own line shape
//! into prompt rows with the fields our verifiers read.

use std::path::Path;

use serde_json::{Map, Value};

use crate::error::Result;
use crate::jsonl::{JsonlReader, OnMalformed};
use crate::row::{Row, json_kind};

/// GSM8K (`{"question", "answer"}` with the gold number after `####`): `question` becomes
/// `prompt`, the gold number (thousands separators removed) becomes `answer`, and the worked
/// solution before `####` is kept as `solution` (a target for supervised warm-up).
pub fn read_gsm8k(path: impl AsRef<Path>, on_malformed: OnMalformed) -> Result<Vec<Row>> {
    JsonlReader::open(path, on_malformed)?
        .converting(gsm8k_row)
        .collect()
}

fn gsm8k_row(mut line: Map<String, Value>) -> Result<Row, String> {
    let question = take_string(&mut line, "question")?;
    let answer = take_string(&mut line, "answer")?;
    let (solution, gold) = answer
        .rsplit_once("####")
        .ok_or("field `answer` has no `####` before the final answer")?;
    let gold = gold.trim().replace(',', "");
    if gold.is_empty() {
        return Err("field `answer` has nothing after `####`".into());
    }
    Ok(Row::from_prompt(question)
        .with("answer", gold)
        .with("solution", solution.trim_end()))
}

/// HumanEval (`HumanEval.jsonl.gz` or plain): rows keep the source's fields — `task_id`,
/// `prompt` (signature and docstring), `canonical_solution`, `test` (defines
/// `check(candidate)`), `entry_point` — after checking that each is a string.
pub fn read_humaneval(path: impl AsRef<Path>, on_malformed: OnMalformed) -> Result<Vec<Row>> {
    JsonlReader::open(path, on_malformed)?
        .converting(humaneval_row)
        .collect()
}

fn humaneval_row(line: Map<String, Value>) -> Result<Row, String> {
    for field in [
        "task_id",
        "prompt",
        "canonical_solution",
        "test",
        "entry_point",
    ] {
        match line.get(field) {
            Some(Value::String(_)) => {}
            Some(other) => {
                return Err(format!(
                    "field `{field}` must be a string, found {}",
                    json_kind(other)
                ));
            }
            None => return Err(format!("missing field `{field}`")),
        }
    }
    Row::new(line)
}

fn take_string(line: &mut Map<String, Value>, field: &str) -> Result<String, String> {
    match line.remove(field) {
        Some(Value::String(text)) => Ok(text),
        Some(other) => Err(format!(
            "field `{field}` must be a string, found {}",
            json_kind(&other)
        )),
        None => Err(format!("missing field `{field}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn gsm8k_lines_become_rows() {
        let row = gsm8k_row(object(
            r#"{"question": "How many?", "answer": "3 + 4 = <<3+4=7>>7\n#### 1,007"}"#,
        ))
        .unwrap();
        assert_eq!(row.prompt(), "How many?");
        assert_eq!(row.get("answer").unwrap(), "1007");
        assert_eq!(row.get("solution").unwrap(), "3 + 4 = <<3+4=7>>7");
        assert_eq!(
            gsm8k_row(object(r#"{"question": "q", "answer": "7"}"#)).unwrap_err(),
            "field `answer` has no `####` before the final answer"
        );
        assert_eq!(
            gsm8k_row(object("{\"answer\": \"#### 7\"}")).unwrap_err(),
            "missing field `question`"
        );
    }

    #[test]
    fn humaneval_lines_need_every_field() {
        let error = humaneval_row(object(r#"{"task_id": "t", "prompt": "p"}"#)).unwrap_err();
        assert_eq!(error, "missing field `canonical_solution`");
    }
}
