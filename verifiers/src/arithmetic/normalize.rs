//! Cleaning an extracted answer (or a gold) down to the number it writes.
//!
//! Only presentation is removed here — currency, units in `\text{}`, markdown emphasis, a
//! trailing period or `!`, LaTeX spacing, math delimiters. Whether what is left is a number is the parser's call, so `19 apples`
//! stays `19 apples` and is unparseable: a unit is only dropped when LaTeX marks it as text.

/// An answer with its presentation stripped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    pub text: String,
    /// Whether a `%` (or `\%`) was written.
    pub percent: bool,
}

/// Commands whose `{argument}` is text: kept if it holds a digit (`\text{5}`), dropped as a
/// unit otherwise (`\text{ dollars}`).
const TEXT_COMMANDS: [&str; 7] = [
    "\\text", "\\textrm", "\\textbf", "\\mathrm", "\\mathbf", "\\mbox", "\\textit",
];

/// Plain replacements, applied in order.
const REPLACEMENTS: [(&str, &str); 27] = [
    ("\u{2212}", "-"), // minus sign
    ("\u{00d7}", "\\times "),
    ("\u{00f7}", "\\div "),
    ("\u{00b7}", "\\cdot "),
    ("\u{00a0}", " "),
    ("\u{2009}", " "),
    ("\u{202f}", " "),
    ("\\dfrac", "\\frac"),
    ("\\tfrac", "\\frac"),
    ("{,}", ","),
    ("\\left", ""),
    ("\\right", ""),
    ("\\displaystyle", ""),
    ("\\!", ""),
    ("\\,", " "),
    ("\\;", " "),
    ("\\:", " "),
    ("\\ ", " "),
    ("~", " "),
    ("^{\\circ}", ""),
    ("^\\circ", ""),
    ("\u{00b0}", ""),
    ("\\$", ""),
    ("\\(", ""),
    ("\\)", ""),
    ("\\[", ""),
    ("\\]", ""),
];

/// Currency signs and the dollar of inline math, dropped wherever they stand.
const DROPPED_CHARS: [char; 5] = ['$', '€', '£', '¥', '₹'];

pub fn normalize(answer: &str) -> Normalized {
    let mut text = answer.to_owned();
    for (from, to) in REPLACEMENTS {
        if text.contains(from) {
            text = text.replace(from, to);
        }
    }
    text = strip_text_commands(&text);
    text.retain(|c| !DROPPED_CHARS.contains(&c));

    // The layers around the number, peeled in whatever order they were put on until none is
    // left: `**18**.`, `*18.*`, `__18%__`, `**$18**!`. Emphasis is only a matching pair around
    // the whole answer; a `**` inside (`2**3`) is left for the parser to reject.
    let mut percent = false;
    let mut text = text.trim();
    loop {
        let before = text;
        for sign in ["\\%", "%"] {
            if let Some(stripped) = text.strip_suffix(sign) {
                text = stripped.trim_end();
                percent = true;
            }
        }
        for mark in ['.', '!'] {
            if let Some(stripped) = text.strip_suffix(mark) {
                text = stripped.trim_end();
            }
        }
        for emphasis in ["**", "__", "*", "_"] {
            if let Some(inner) = text
                .strip_prefix(emphasis)
                .and_then(|t| t.strip_suffix(emphasis))
            {
                text = inner.trim();
                break;
            }
        }
        if text == before {
            break;
        }
    }
    let mut text = strip_outer_braces(text);
    if let Some(value) = single_assignment_value(text) {
        text = strip_outer_braces(value);
    }
    Normalized {
        text: text.to_owned(),
        percent,
    }
}

/// `\text{ dollars}` → ``, `\text{5}` → `5`, `\text{ or }` → ` or `.
fn strip_text_commands(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    'scan: while let Some(at) = rest.find('\\') {
        for command in TEXT_COMMANDS {
            let tail = &rest[at..];
            let Some(after) = tail.strip_prefix(command) else {
                continue;
            };
            let Some(argument) = after.strip_prefix('{') else {
                continue;
            };
            let Some(end) = matching_brace(argument) else {
                continue;
            };
            let inner = &argument[..end];
            out.push_str(&rest[..at]);
            let word = inner.trim();
            if inner.bytes().any(|b| b.is_ascii_digit()) || word == "or" || word == "and" {
                out.push(' ');
                out.push_str(inner);
                out.push(' ');
            }
            rest = &argument[end + 1..];
            continue 'scan;
        }
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
    out
}

/// The byte index of the `}` that closes a group whose `{` was just before `text`.
pub fn matching_brace(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, b) in text.bytes().enumerate() {
        match b {
            b'{' => depth += 1,
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// `{{42}}` → `42`; `{1}+{2}` is left alone.
fn strip_outer_braces(mut text: &str) -> &str {
    while let Some(inner) = text.strip_prefix('{') {
        // The `{` must close at the very end (a lone `{` closes nowhere).
        match matching_brace(inner) {
            Some(end) if end + 1 == inner.len() => text = inner[..end].trim(),
            _ => break,
        }
    }
    text
}

/// The right side of `x = 3`, `y_1 = 3` or `n=3`: one assignment to one variable name.
fn single_assignment_value(text: &str) -> Option<&str> {
    let (left, right) = text.split_once('=')?;
    if right.contains('=') {
        return None;
    }
    let name = left.trim();
    let mut chars = name.chars();
    let head_is_letter = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let tail_is_subscript = chars.all(|c| c.is_ascii_alphanumeric() || "_{}".contains(c));
    (head_is_letter && tail_is_subscript && name.len() <= 8).then(|| right.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> (String, bool) {
        let n = normalize(s);
        (n.text, n.percent)
    }

    #[test]
    fn presentation_is_stripped() {
        assert_eq!(norm(r"\$18"), ("18".into(), false));
        assert_eq!(norm(r"18 \text{ dollars}"), ("18".into(), false));
        assert_eq!(norm(r"10\text{ cm}"), ("10".into(), false));
        assert_eq!(norm(r"\text{5}"), ("5".into(), false));
        assert_eq!(norm(r"50\%"), ("50".into(), true));
        assert_eq!(norm("50 %"), ("50".into(), true));
        assert_eq!(norm("7."), ("7".into(), false));
        assert_eq!(norm("**73**"), ("73".into(), false));
        assert_eq!(norm("**73**."), ("73".into(), false));
        assert_eq!(norm("*73.*"), ("73".into(), false));
        assert_eq!(norm("__50%__!"), ("50".into(), true));
        assert_eq!(norm(r"1{,}000"), ("1,000".into(), false));
        assert_eq!(norm(r"1\,000"), ("1 000".into(), false));
        assert_eq!(norm(r"\dfrac{1}{2}"), (r"\frac{1}{2}".into(), false));
        assert_eq!(norm("\u{2212}7"), ("-7".into(), false));
        assert_eq!(norm("{{42}}"), ("42".into(), false));
        assert_eq!(norm("{"), ("{".into(), false));
        assert_eq!(norm("90^\\circ"), ("90".into(), false));
        assert_eq!(norm("$x = 3$"), ("3".into(), false));
    }

    #[test]
    fn what_is_not_presentation_stays() {
        assert_eq!(norm("19 apples").0, "19 apples");
        assert_eq!(norm(r"5 \text{ or } 6").0, "5   or   6");
        assert_eq!(norm("{1}+{2}").0, "{1}+{2}");
        assert_eq!(norm("x = 3 = 4").0, "x = 3 = 4");
        assert_eq!(norm("3 * 4").0, "3 * 4");
        assert_eq!(norm("2**3").0, "2**3");
        assert_eq!(norm(r"\text{unclosed").0, r"\text{unclosed");
    }
}
