//! A supervised target played through an environment, as a rollout would be: each model turn of
//! the target (its text up to one of the environment's turn stops) goes to a real episode, and
//! the episode's observation (a tool's actual result) joins the sequence as context the loss
//! masks. A warm-up so taught sees what it will see in GRPO and is never trained to write what
//! the environment writes.

use grpo_data::Row;
use grpo_environments::{Ending, Environment, Response};
use grpo_policy::Tokenizer;

use crate::error::{Result, TrainerError};

/// The completion tokens of `target` played through `environment` for `row`, and for each
/// token whether the model writes it (`true`) or the environment does. Each piece is encoded
/// on its own, as the sampler encodes observations apart from the model's tokens. What
/// [`SftConfig::completion`](crate::SftConfig::completion) gives with an environment.
pub(crate) fn play_demonstration(
    environment: &dyn Environment,
    row: &Row,
    target: &str,
    tokenizer: &dyn Tokenizer,
) -> Result<(Vec<u32>, Vec<bool>)> {
    let prompt = || row.prompt().chars().take(60).collect::<String>();
    let mut episode = environment
        .start(row)
        .map_err(|source| TrainerError::Environment {
            prompt: prompt(),
            source,
        })?;
    let stops = environment.turn_stops();
    let (mut ids, mut from_model) = (Vec::new(), Vec::new());
    let mut push = |text: &str, model: bool| {
        let piece = tokenizer.encode(text);
        from_model.extend(std::iter::repeat_n(model, piece.len()));
        ids.extend(piece);
    };
    let mut rest = target;
    let mut turn = 1;
    // The end of the next turn: just after the earliest turn stop.
    let next_end = |text: &str| {
        stops
            .iter()
            .filter_map(|stop| text.find(stop.as_str()).map(|at| at + stop.len()))
            .min()
    };
    while let Some(end) = next_end(rest) {
        push(&rest[..end], true);
        match episode.respond(&rest[..end]) {
            Response::Observe(observation) => push(&observation, false),
            Response::End if end == rest.len() => break,
            Response::End => {
                return Err(TrainerError::Demonstration {
                    prompt: prompt(),
                    message: format!(
                        "the environment ended the episode after turn {turn}, but the target \
                         goes on with {:?}",
                        &rest[end..]
                    ),
                });
            }
        }
        rest = &rest[end..];
        turn += 1;
    }
    if !rest.is_empty() {
        push(rest, true);
    }
    episode.finish(Ending::Done);
    Ok((ids, from_model))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::play_demonstration as play;
    use grpo_data::Row;
    use grpo_environments::{Calculator, ToolCalling};
    use grpo_policy::{ByteTokenizer, Tokenizer};

    fn calculator() -> ToolCalling {
        ToolCalling::new(vec![Arc::new(Calculator)], Default::default()).unwrap()
    }

    fn text(ids: &[u32], mask: &[bool], model: bool) -> String {
        let kept: Vec<u32> = ids
            .iter()
            .zip(mask)
            .filter(|(_, m)| **m == model)
            .map(|(i, _)| *i)
            .collect();
        ByteTokenizer.decode(&kept)
    }

    #[test]
    fn the_tool_writes_its_result_and_the_model_writes_the_rest() {
        let row = Row::from_prompt("What is 2+3?");
        let call =
            r#"<tool_call>{"name": "calculator", "arguments": {"expression": "2+3"}}</tool_call>"#;
        // The target's own "result" is not there: the real one comes from the tool.
        let target = format!("{call}Answer: 5");
        let (ids, mask) = play(&calculator(), &row, &target, &ByteTokenizer).unwrap();
        assert_eq!(ids.len(), mask.len());
        assert_eq!(text(&ids, &mask, true), target);
        assert_eq!(text(&ids, &mask, false), "<tool_response>5</tool_response>");
        // In order: the call, the result, the answer.
        let whole = ByteTokenizer.decode(&ids);
        assert_eq!(
            whole,
            format!("{call}<tool_response>5</tool_response>Answer: 5")
        );
    }

    #[test]
    fn a_target_without_a_call_is_all_the_models() {
        let row = Row::from_prompt("What is 2+3?");
        let (ids, mask) = play(&calculator(), &row, "2+3=5", &ByteTokenizer).unwrap();
        assert_eq!(ByteTokenizer.decode(&ids), "2+3=5");
        assert!(mask.iter().all(|m| *m));
    }

    #[test]
    fn a_bad_call_in_a_target_is_answered_with_the_error_the_model_would_see() {
        let row = Row::from_prompt("What is 2+3?");
        let target = "<tool_call>{not json}</tool_call>Answer: 5";
        let (ids, mask) = play(&calculator(), &row, target, &ByteTokenizer).unwrap();
        assert!(text(&ids, &mask, false).contains("error:"));
        assert_eq!(text(&ids, &mask, true), target);
    }
}
