//! Finding the final answer in a completion.
//!
//! Every search here is a single linear pass (or a handful of them): a completion is untrusted
//! model output and may be megabytes of `\boxed{\boxed{…`.

use std::sync::LazyLock;

use regex::Regex;
use serde::Deserialize;

/// Where in a completion the final answer is taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Extract {
    /// The first anchor kind present, in this priority: last brace-matched `\boxed{…}` or
    /// `\fbox{…}`, last `<answer>…</answer>`, last `#### X`, last `Answer: X`.
    #[default]
    Anchors,
    /// The last number written anywhere (lenient; for models that never learned a format).
    LastNumber,
    /// The whole completion, trimmed.
    Whole,
}

/// The final answer of `completion`, or `None` if it gave none.
///
/// When the completion contains `</think>`, only the text after the last one is searched:
/// what a model muses about while thinking is not its answer.
pub fn final_answer(completion: &str, extract: Extract) -> Option<&str> {
    let text = match completion.rfind("</think>") {
        Some(at) => &completion[at + "</think>".len()..],
        None => completion,
    };
    let answer = match extract {
        Extract::Anchors => last_box(text)
            .or_else(|| last_answer_tag(text))
            .or_else(|| last_line_after_marker(text))
            .or_else(|| last_answer_colon(text)),
        Extract::LastNumber => last_number(text),
        Extract::Whole => Some(text),
    }?;
    let answer = answer.trim();
    (!answer.is_empty()).then_some(answer)
}

/// The contents of the last `\boxed{…}` or `\fbox{…}` whose braces close.
fn last_box(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    // One pass pairs every unescaped `{` with its `}`; `closing[i]` is the match of `{` at i.
    let mut closing = vec![usize::MAX; bytes.len()];
    let mut open = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1, // `\{` and `\}` are literal braces in LaTeX
            b'{' => open.push(i),
            b'}' => {
                if let Some(o) = open.pop() {
                    closing[o] = i;
                }
            }
            _ => {}
        }
        i += 1;
    }
    let mut best: Option<(usize, &str)> = None;
    for command in ["\\boxed", "\\fbox"] {
        for (at, _) in text.rmatch_indices(command) {
            let after = at + command.len();
            let brace = after + (text[after..].len() - text[after..].trim_start().len());
            if bytes.get(brace) == Some(&b'{') && closing[brace] != usize::MAX {
                if best.is_none_or(|(b, _)| at > b) {
                    best = Some((at, &text[brace + 1..closing[brace]]));
                }
                break; // later occurrences of this command were already tried
            }
        }
    }
    best.map(|(_, inner)| inner)
}

/// The contents of the last `<answer>…</answer>`.
fn last_answer_tag(text: &str) -> Option<&str> {
    let close = text.rfind("</answer>")?;
    let open = text[..close].rfind("<answer>")?;
    Some(&text[open + "<answer>".len()..close])
}

/// The rest of the line after the last `####` (GSM8K's answer marker).
fn last_line_after_marker(text: &str) -> Option<&str> {
    let at = text.rfind("####")?;
    let rest = text[at + 4..].trim_start_matches('#');
    let line = rest.split('\n').next().unwrap_or_default();
    (!line.trim().is_empty()).then_some(line)
}

/// The rest of the line after the last `Answer:` (any case). A bold label's own markers
/// (`**Answer:**`, `**Answer**:`) belong to the label; emphasis on the answer itself
/// (`Answer: **73**.`) is left for normalisation, which strips it as a pair.
fn last_answer_colon(text: &str) -> Option<&str> {
    static ANSWER: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?i)answer\s*(?:\*\*)?\s*:(?:\*\*)?").expect("valid regex"));
    let found = ANSWER.find_iter(text).last()?;
    let line = text[found.end()..].split('\n').next().unwrap_or_default();
    let line = line.trim();
    (!line.trim().is_empty()).then_some(line)
}

/// The last number-looking run in the text, with a trailing comma or period left out.
fn last_number(text: &str) -> Option<&str> {
    static NUMBER: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"[-−]?(?:\d[\d,]*(?:\.\d+)?(?:/\d+)?|\.\d+)").expect("valid regex")
    });
    let found = NUMBER.find_iter(text).last()?;
    Some(found.as_str().trim_end_matches(','))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anchors(text: &str) -> Option<&str> {
        final_answer(text, Extract::Anchors)
    }

    #[test]
    fn box_priority_and_nesting() {
        assert_eq!(
            anchors(r"\boxed{\frac{1}{2}} and #### 7"),
            Some(r"\frac{1}{2}")
        );
        assert_eq!(anchors(r"\boxed{5} wait \fbox{6}"), Some("6"));
        assert_eq!(anchors(r"\fbox{5} wait \boxed {6}"), Some("6"));
        assert_eq!(anchors(r"\boxed{\{1\}}"), Some(r"\{1\}"));
        // An unterminated box is no answer; an earlier complete one still is.
        assert_eq!(anchors(r"The answer is \boxed{18"), None);
        assert_eq!(anchors(r"\boxed{3} then \boxed{4"), Some("3"));
    }

    #[test]
    fn tag_marker_and_colon_anchors() {
        assert_eq!(anchors("<answer> 42 </answer>"), Some("42"));
        assert_eq!(anchors("<answer>1</answer><answer>2</answer>"), Some("2"));
        assert_eq!(anchors("so\n#### 1,000\nthanks"), Some("1,000"));
        assert_eq!(anchors("####\n"), None);
        // The answer's own emphasis is normalisation's to strip (as a pair); the label's is
        // the label's.
        assert_eq!(anchors("Final Answer: **73**."), Some("**73**."));
        assert_eq!(anchors("**Answer:** 12 apples"), Some("12 apples"));
        assert_eq!(anchors("**Answer**: 5"), Some("5"));
        assert_eq!(anchors("answer: 1\nANSWER: 2"), Some("2"));
        // The anchor kinds rank by kind, not by position.
        assert_eq!(anchors("<answer>1</answer> #### 2"), Some("1"));
    }

    #[test]
    fn think_scope() {
        assert_eq!(
            anchors(r"<think>\boxed{42}</think> so \boxed{41}"),
            Some("41")
        );
        assert_eq!(anchors(r"<think>\boxed{42}</think>"), None);
        assert_eq!(anchors(r"<think>\boxed{42}"), Some("42"));
    }

    #[test]
    fn other_modes() {
        assert_eq!(
            final_answer("The answer is 1,000.", Extract::LastNumber),
            Some("1,000")
        );
        assert_eq!(
            final_answer("1, 2, then 3/4.", Extract::LastNumber),
            Some("3/4")
        );
        assert_eq!(final_answer("no digits", Extract::LastNumber), None);
        assert_eq!(final_answer("  19 \n", Extract::Whole), Some("19"));
        assert_eq!(final_answer("   ", Extract::Whole), None);
    }

    #[test]
    fn linear_on_pathological_input() {
        let text = r"\boxed{".repeat(200_000);
        assert_eq!(anchors(&text), None);
        let text = format!("{}1{}", r"\boxed{".repeat(100_000), "}".repeat(100_000));
        assert_eq!(anchors(&text), Some("1"));
    }
}
