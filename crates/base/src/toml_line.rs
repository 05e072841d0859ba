//! The line a TOML error points at, so every config error can name `file:line`.

/// The 1-based line of byte `offset` in `text`.
pub fn line_at(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The line of `text` that `error` (from parsing `text`) points at, when it has a position.
pub fn toml_line(text: &str, error: &toml::de::Error) -> Option<usize> {
    error.span().map(|span| line_at(text, span.start))
}

/// Where `error` (from parsing `text`, read from `origin`) is: `origin:line`, or `origin` alone
/// when the error has no position.
pub fn toml_location(origin: &str, text: &str, error: &toml::de::Error) -> String {
    match toml_line(text, error) {
        Some(line) => format!("{origin}:{line}"),
        None => origin.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_count_from_one() {
        let text = "a = 1\nb = 2\n";
        assert_eq!(line_at(text, 0), 1);
        assert_eq!(line_at(text, 6), 2);
        assert_eq!(line_at(text, 1000), 3);
    }

    #[test]
    fn a_syntax_error_points_at_its_line() {
        let text = "a = 1\n\n[grpo]\nbeta = = 3\n";
        let error = toml::from_str::<toml::Table>(text).unwrap_err();
        assert_eq!(toml_line(text, &error), Some(4));
        assert_eq!(toml_location("run.toml", text, &error), "run.toml:4");
    }
}
