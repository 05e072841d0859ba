//! Stop strings, which may span token boundaries.

/// Where the earliest stop string occurs in `text` (byte offset, index of the stop string),
/// searching only where a match could be new: from `longest − 1` bytes before `checked` (the
/// length already searched), so each step is cheap and a string split across tokens is found.
pub fn find_stop(text: &str, checked: usize, stops: &[String]) -> Option<(usize, usize)> {
    let longest = stops.iter().map(String::len).max()?;
    let mut from = checked
        .saturating_sub(longest.saturating_sub(1))
        .min(text.len());
    while !text.is_char_boundary(from) {
        from -= 1;
    }
    stops
        .iter()
        .enumerate()
        .filter_map(|(i, stop)| text[from..].find(stop.as_str()).map(|at| (from + at, i)))
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_stops_across_steps() {
        let stops = vec!["</answer>".to_owned(), "\n\n".to_owned()];
        // "42</ans" was searched in an earlier step; "wer>" arrives now.
        assert_eq!(find_stop("42</answer>", 7, &stops), Some((2, 0)));
        assert_eq!(find_stop("a\n", 1, &stops), None);
        assert_eq!(find_stop("a\n\nb</answer>", 2, &stops), Some((1, 1)));
        assert_eq!(find_stop("é</answer>", 2, &stops), Some((2, 0)));
        assert_eq!(find_stop("anything", 0, &[]), None);
    }
}
