//! The regex matcher: rewards completions that match patterns, on the `regex` crate only.
//!
//! Guarantee for untrusted input: matching runs in time linear in the completion's length
//! (the `regex` crate has no backtracking), and a user pattern that would compile to more than
//! `size_limit` bytes is refused when the verifier is built, not when it meets a completion.

use std::sync::LazyLock;

use regex::{Regex, RegexBuilder};
use serde::Deserialize;

use crate::{ConfigError, Sample, Score, Verifier, VerifyError};

/// How a pattern is applied to the completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchMode {
    /// The pattern must match the whole completion.
    Full,
    /// The pattern must match somewhere in it.
    #[default]
    Search,
    /// Reward `per_match` for each non-overlapping match, up to `max_reward`.
    Count,
}

/// Ready-made checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// DeepSeek-R1's format: `<think>…</think>` then `<answer>…</answer>` and nothing else
    /// (surrounding whitespace aside), each tag exactly once, both bodies non-empty.
    R1Format,
}

/// Settings of the regex matcher; the TOML keys of `kind = "regex"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegexConfig {
    /// One pattern…
    pub pattern: Option<String>,
    /// …or several, each worth an equal share of the reward (partial credit).
    pub patterns: Vec<String>,
    /// …or a preset instead of patterns.
    pub preset: Option<Preset>,
    pub mode: MatchMode,
    /// Count mode: reward per match.
    pub per_match: f32,
    /// Count mode: the most one pattern can earn.
    pub max_reward: f32,
    /// Largest compiled size of a pattern, in bytes.
    pub size_limit: usize,
}

impl Default for RegexConfig {
    fn default() -> Self {
        RegexConfig {
            pattern: None,
            patterns: Vec::new(),
            preset: None,
            mode: MatchMode::Search,
            per_match: 1.0,
            max_reward: 1.0,
            size_limit: 1 << 20,
        }
    }
}

/// The regex matcher.
///
/// ```
/// use grpo_verifiers::regex_matcher::{MatchMode, RegexConfig, RegexMatcher};
/// use grpo_verifiers::{Sample, Verifier};
///
/// let config = RegexConfig { pattern: Some(r"\d+".into()), mode: MatchMode::Full, ..Default::default() };
/// let digits_only = RegexMatcher::new(config).unwrap();
/// let row = serde_json::Map::new();
/// assert_eq!(digits_only.verify(&Sample::new("", "42", &row)).unwrap().reward, 1.0);
/// assert_eq!(digits_only.verify(&Sample::new("", "42 apples", &row)).unwrap().reward, 0.0);
/// ```
#[derive(Debug, Clone)]
pub struct RegexMatcher {
    check: Check,
    mode: MatchMode,
    per_match: f32,
    max_reward: f32,
}

#[derive(Debug, Clone)]
enum Check {
    Patterns(Vec<Regex>),
    R1Format,
}

impl RegexMatcher {
    pub fn new(config: RegexConfig) -> Result<Self, ConfigError> {
        let mut sources = config.patterns.clone();
        sources.extend(config.pattern.clone());
        let check = match (config.preset, sources.is_empty()) {
            (Some(_), false) => {
                return Err(ConfigError::invalid(
                    "preset",
                    "give either a preset or pattern(s), not both",
                ));
            }
            (Some(Preset::R1Format), true) => Check::R1Format,
            (None, true) => {
                return Err(ConfigError::invalid(
                    "pattern",
                    "missing: give `pattern`, `patterns` or `preset`",
                ));
            }
            (None, false) => Check::Patterns(
                sources
                    .iter()
                    .map(|source| compile(source, config.mode, config.size_limit))
                    .collect::<Result<_, _>>()?,
            ),
        };
        if config.mode == MatchMode::Count
            && !(config.per_match.is_finite() && config.max_reward.is_finite())
        {
            return Err(ConfigError::invalid(
                "per_match",
                "per_match and max_reward must be finite",
            ));
        }
        Ok(RegexMatcher {
            check,
            mode: config.mode,
            per_match: config.per_match,
            max_reward: config.max_reward,
        })
    }
}

fn compile(source: &str, mode: MatchMode, size_limit: usize) -> Result<Regex, ConfigError> {
    let anchored;
    let source = if mode == MatchMode::Full {
        anchored = format!(r"\A(?:{source})\z");
        &anchored
    } else {
        source
    };
    RegexBuilder::new(source)
        .size_limit(size_limit)
        .dfa_size_limit(size_limit)
        .build()
        .map_err(|e| ConfigError::invalid("pattern", e.to_string()))
}

/// Whether `text` has DeepSeek-R1's format (see [`Preset::R1Format`]).
///
/// ```
/// use grpo_verifiers::regex_matcher::is_r1_format;
///
/// assert!(is_r1_format("<think>2+2 is 4</think>\n<answer>4</answer>"));
/// assert!(!is_r1_format("<answer>4</answer>"));
/// ```
pub fn is_r1_format(text: &str) -> bool {
    static SHAPE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?s)\A\s*<think>(.*)</think>\s*<answer>(.*)</answer>\s*\z")
            .expect("valid regex")
    });
    let once = |tag: &str| text.matches(tag).count() == 1;
    if !["<think>", "</think>", "<answer>", "</answer>"]
        .into_iter()
        .all(once)
    {
        return false;
    }
    SHAPE
        .captures(text)
        .is_some_and(|c| !c[1].trim().is_empty() && !c[2].trim().is_empty())
}

impl Verifier for RegexMatcher {
    fn verify(&self, sample: &Sample<'_>) -> Result<Score, VerifyError> {
        let text = sample.completion;
        let patterns = match &self.check {
            Check::R1Format => {
                let ok = is_r1_format(text);
                let details = if ok { "R1 format" } else { "not in R1 format" };
                return Ok(Score::binary(ok, details));
            }
            Check::Patterns(patterns) => patterns,
        };
        if self.mode == MatchMode::Count {
            let counts: Vec<usize> = patterns.iter().map(|p| p.find_iter(text).count()).collect();
            let total: f32 = counts
                .iter()
                .map(|&n| (n as f32 * self.per_match).min(self.max_reward))
                .sum();
            let reward = total / patterns.len() as f32;
            return Ok(Score::reward(reward, format!("match counts {counts:?}")));
        }
        let matched: Vec<bool> = patterns.iter().map(|p| p.is_match(text)).collect();
        let hits = matched.iter().filter(|m| **m).count();
        let mut score = Score::binary(
            hits == patterns.len(),
            format!("{hits}/{} patterns matched", patterns.len()),
        );
        score.reward = hits as f32 / patterns.len() as f32;
        Ok(score)
    }

    fn is_bounded(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn score(config: RegexConfig, completion: &str) -> Score {
        let row = Map::new();
        RegexMatcher::new(config)
            .unwrap()
            .verify(&Sample::new("", completion, &row))
            .unwrap()
    }

    fn patterns(ps: &[&str], mode: MatchMode) -> RegexConfig {
        RegexConfig {
            patterns: ps.iter().map(|p| p.to_string()).collect(),
            mode,
            ..Default::default()
        }
    }

    #[test]
    fn modes() {
        let full = patterns(&[r"\d+"], MatchMode::Full);
        assert_eq!(score(full.clone(), "123").reward, 1.0);
        assert_eq!(score(full, "123 apples").reward, 0.0);
        assert_eq!(
            score(patterns(&[r"\d+"], MatchMode::Search), "123 apples").correct,
            Some(true)
        );
        let count = RegexConfig {
            per_match: 0.25,
            max_reward: 0.5,
            ..patterns(&["<tag>"], MatchMode::Count)
        };
        assert_eq!(score(count.clone(), "<tag>").reward, 0.25);
        assert_eq!(score(count.clone(), "<tag><tag><tag>").reward, 0.5);
        assert_eq!(score(count, "").correct, None);
    }

    #[test]
    fn partial_credit() {
        let s = score(patterns(&["a", "b", "c", "d"], MatchMode::Search), "a c");
        assert_eq!((s.reward, s.correct), (0.5, Some(false)));
    }

    #[test]
    fn alternation_is_anchored_as_a_whole_in_full_mode() {
        assert_eq!(score(patterns(&["a|b"], MatchMode::Full), "ab").reward, 0.0);
        assert_eq!(score(patterns(&["a|b"], MatchMode::Full), "b").reward, 1.0);
    }

    #[test]
    fn r1_format_cases() {
        for (text, ok) in [
            ("<think>x</think><answer>4</answer>", true),
            ("\n<think>\nx\n</think>\n\n<answer>\n4\n</answer>\n", true),
            ("<think>x</think><answer>4</answer> trailing", false),
            ("lead <think>x</think><answer>4</answer>", false),
            ("<think> </think><answer>4</answer>", false),
            ("<think>x</think><answer></answer>", false),
            ("<think>x</think><think>y</think><answer>4</answer>", false),
            (
                "<think>x</think><answer>4</answer><answer>5</answer>",
                false,
            ),
            ("<answer>4</answer><think>x</think>", false),
            ("<think>x<answer>4</answer></think>", false),
        ] {
            let config = RegexConfig {
                preset: Some(Preset::R1Format),
                ..Default::default()
            };
            assert_eq!(score(config, text).correct, Some(ok), "{text:?}");
        }
    }

    #[test]
    fn bad_configs_are_refused() {
        let err = |c: RegexConfig| RegexMatcher::new(c).unwrap_err().to_string();
        assert!(err(RegexConfig::default()).contains("pattern"));
        assert!(err(patterns(&["("], MatchMode::Search)).contains("pattern"));
        let huge = RegexConfig {
            size_limit: 1000,
            ..patterns(&[r"\w{1000}"], MatchMode::Search)
        };
        let message = err(huge);
        assert!(message.contains("size limit"), "{message}");
        let both = RegexConfig {
            preset: Some(Preset::R1Format),
            ..patterns(&["a"], MatchMode::Search)
        };
        assert!(err(both).contains("preset"));
    }
}
