//! Verifiers made of verifiers: a weighted sum (what a whole `V.toml` is), a gate, and a max.
//! Each keeps every member's own outcome, so per-verifier metrics survive the combination.

use std::sync::Arc;
use std::time::Duration;

use rayon::prelude::*;
use serde_json::{Map, Value, json};

use crate::guard::verify_guarded;
use crate::{MemberScore, Sample, Score, Verifier, VerifyError};

/// A named verifier inside a combinator.
#[derive(Clone)]
pub struct Member {
    pub name: String,
    pub verifier: Arc<dyn Verifier>,
}

impl Member {
    pub fn new(name: impl Into<String>, verifier: impl Verifier + 'static) -> Self {
        Member {
            name: name.into(),
            verifier: Arc::new(verifier),
        }
    }
}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The outcome of a [`VerifierSet`] on one sample: the combined reward, and every member's own
/// outcome even when the combination is unscorable.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// `Err` when some member could not score the sample: the sample then has no reward.
    pub reward: Result<f32, VerifyError>,
    /// `Some(all correct)` over the members that have a notion of correctness.
    pub correct: Option<bool>,
    pub members: Vec<MemberScore>,
}

/// A weighted sum of verifiers: `reward = Σ weight_i · reward_i`.
///
/// This is what a `V.toml` (or the trainer's `[[verifiers]]` table) builds, and `kind = "sum"`
/// nests one. A sample is unscorable if any member cannot score it: a sum with a term missing
/// would be a silently different number.
///
/// ```
/// use grpo_verifiers::{Member, Sample, VerifierSet};
/// use grpo_verifiers::arithmetic::ArithmeticChecker;
/// use grpo_verifiers::regex_matcher::{Preset, RegexConfig, RegexMatcher};
///
/// let accuracy = ArithmeticChecker::new(Default::default()).unwrap();
/// let format = RegexMatcher::new(RegexConfig { preset: Some(Preset::R1Format), ..Default::default() }).unwrap();
/// let set = VerifierSet::new(vec![
///     (Member::new("accuracy", accuracy), 1.0),
///     (Member::new("format", format), 0.5),
/// ]).unwrap();
///
/// let row = serde_json::json!({"answer": "4"});
/// let eval = set.evaluate(&Sample::new("2+2?", "<think>2+2</think><answer>4</answer>", row.as_object().unwrap()));
/// assert_eq!(eval.reward, Ok(1.5));
/// assert_eq!(eval.correct, Some(true));
/// ```
#[derive(Debug, Clone)]
pub struct VerifierSet {
    members: Vec<(Member, f32)>,
    budget: Option<Duration>,
}

impl VerifierSet {
    /// A set of `(member, weight)`; names must be unique and weights finite.
    pub fn new(members: Vec<(Member, f32)>) -> Result<Self, crate::ConfigError> {
        check_names(members.iter().map(|(m, _)| m))?;
        if let Some((member, weight)) = members.iter().find(|(_, w)| !w.is_finite()) {
            return Err(crate::ConfigError::invalid(
                "weight",
                format!(
                    "`{}` has weight {weight}; weights must be finite",
                    member.name
                ),
            ));
        }
        Ok(VerifierSet {
            members,
            budget: None,
        })
    }

    /// Abandon a member that is not [bounded](Verifier::is_bounded) after `budget` per sample
    /// (it is then unscorable for that sample).
    pub fn with_time_budget(mut self, budget: Option<Duration>) -> Self {
        self.budget = budget;
        self
    }

    /// This set with its members' weights replaced by `weights`, in order (TRL's
    /// `reward_weights`).
    pub fn reweighted(mut self, weights: &[f32]) -> Result<Self, crate::ConfigError> {
        if weights.len() != self.members.len() {
            return Err(crate::ConfigError::invalid(
                "reward_weights",
                format!(
                    "has {} weights for {} verifiers",
                    weights.len(),
                    self.members.len()
                ),
            ));
        }
        for ((_, weight), new) in self.members.iter_mut().zip(weights) {
            *weight = *new;
        }
        VerifierSet::new(self.members).map(|set| set.with_time_budget(self.budget))
    }

    pub fn members(&self) -> impl Iterator<Item = (&str, f32)> {
        self.members.iter().map(|(m, w)| (m.name.as_str(), *w))
    }

    /// Scores one sample with every member (panics caught, time budget applied).
    pub fn evaluate(&self, sample: &Sample<'_>) -> Evaluation {
        let members: Vec<MemberScore> = self
            .members
            .iter()
            .map(|(member, _)| MemberScore {
                name: member.name.clone(),
                outcome: verify_guarded(&member.verifier, sample, self.budget),
            })
            .collect();
        let mut reward = Ok(0.0f32);
        for ((_, weight), scored) in self.members.iter().zip(&members) {
            reward = match (&scored.outcome, reward) {
                (_, Err(e)) => Err(e),
                (Ok(score), Ok(sum)) => Ok(sum + weight * score.reward),
                (Err(e), Ok(_)) => Err(member_error(&scored.name, e)),
            };
        }
        Evaluation {
            correct: reward.as_ref().ok().and(all_correct(&members)),
            reward,
            members,
        }
    }

    /// Scores many samples in parallel (rayon), in order.
    pub fn evaluate_batch(&self, samples: &[Sample<'_>]) -> Vec<Evaluation> {
        samples
            .par_iter()
            .map(|sample| self.evaluate(sample))
            .collect()
    }
}

impl Verifier for VerifierSet {
    fn verify(&self, sample: &Sample<'_>) -> Result<Score, VerifyError> {
        let evaluation = self.evaluate(sample);
        Ok(Score {
            reward: evaluation.reward?,
            correct: evaluation.correct,
            details: format!("weighted sum of {} verifiers", self.members.len()),
            members: evaluation.members,
        })
    }

    fn is_bounded(&self) -> bool {
        self.members.iter().all(|(m, _)| m.verifier.is_bounded())
    }
}

/// `then` counts only when `condition` passes; otherwise the reward is 0.
///
/// "Passes" means `correct == Some(true)`, or, for a condition without a notion of
/// correctness, a reward above 0. `then` is not even run when the gate is closed.
#[derive(Debug, Clone)]
pub struct Gate {
    condition: Member,
    then: Member,
}

impl Gate {
    pub fn new(condition: Member, then: Member) -> Result<Self, crate::ConfigError> {
        check_names([&condition, &then])?;
        Ok(Gate { condition, then })
    }
}

impl Verifier for Gate {
    fn verify(&self, sample: &Sample<'_>) -> Result<Score, VerifyError> {
        let condition = verify_guarded(&self.condition.verifier, sample, None)
            .map_err(|e| member_error(&self.condition.name, &e))?;
        let passed = condition.correct.unwrap_or(condition.reward > 0.0);
        let mut members = vec![MemberScore {
            name: self.condition.name.clone(),
            outcome: Ok(condition),
        }];
        if !passed {
            return Ok(Score {
                reward: 0.0,
                correct: Some(false),
                details: format!("gate closed by `{}`", self.condition.name),
                members,
            });
        }
        let then = verify_guarded(&self.then.verifier, sample, None)
            .map_err(|e| member_error(&self.then.name, &e))?;
        let score = Score {
            reward: then.reward,
            correct: then.correct,
            details: format!("gate open: {}", then.details),
            members: Vec::new(),
        };
        members.push(MemberScore {
            name: self.then.name.clone(),
            outcome: Ok(then),
        });
        Ok(Score { members, ..score })
    }

    fn is_bounded(&self) -> bool {
        self.condition.verifier.is_bounded() && self.then.verifier.is_bounded()
    }
}

/// The best of its members: `reward = max_i reward_i`; correct if any member is.
#[derive(Debug, Clone)]
pub struct Max {
    members: Vec<Member>,
}

impl Max {
    pub fn new(members: Vec<Member>) -> Result<Self, crate::ConfigError> {
        if members.is_empty() {
            return Err(crate::ConfigError::invalid(
                "of",
                "`max` needs at least one member",
            ));
        }
        check_names(&members)?;
        Ok(Max { members })
    }
}

impl Verifier for Max {
    fn verify(&self, sample: &Sample<'_>) -> Result<Score, VerifyError> {
        let mut members = Vec::with_capacity(self.members.len());
        for member in &self.members {
            let score = verify_guarded(&member.verifier, sample, None)
                .map_err(|e| member_error(&member.name, &e))?;
            members.push(MemberScore {
                name: member.name.clone(),
                outcome: Ok(score),
            });
        }
        let (best, reward) = members
            .iter()
            .filter_map(|m| Some((m.name.as_str(), m.outcome.as_ref().ok()?.reward)))
            .fold(
                ("", f32::NEG_INFINITY),
                |a, b| if b.1 > a.1 { b } else { a },
            );
        let correct = members
            .iter()
            .filter_map(|m| m.outcome.as_ref().ok()?.correct)
            .reduce(|a, b| a || b);
        Ok(Score {
            reward,
            correct,
            details: format!("best: `{best}`"),
            members,
        })
    }

    fn is_bounded(&self) -> bool {
        self.members.iter().all(|m| m.verifier.is_bounded())
    }
}

fn member_error(name: &str, error: &VerifyError) -> VerifyError {
    VerifyError::Member {
        member: name.to_owned(),
        source: Box::new(error.clone()),
    }
}

fn all_correct(members: &[MemberScore]) -> Option<bool> {
    members
        .iter()
        .filter_map(|m| m.outcome.as_ref().ok()?.correct)
        .reduce(|a, b| a && b)
}

fn check_names<'a>(
    members: impl IntoIterator<Item = &'a Member>,
) -> Result<(), crate::ConfigError> {
    let mut seen = std::collections::HashSet::new();
    for member in members {
        if !seen.insert(member.name.as_str()) {
            return Err(crate::ConfigError::invalid(
                "name",
                format!(
                    "two verifiers are named `{}`; give each its own `name`",
                    member.name
                ),
            ));
        }
    }
    Ok(())
}

/// A member's outcome as JSON: `{"reward", "correct", "unscorable", "details", "members"?}`.
pub fn outcome_json(outcome: &Result<Score, VerifyError>) -> Value {
    match outcome {
        Ok(score) => {
            let mut object = json!({
                "reward": reward_json(score.reward),
                "correct": score.correct,
                "unscorable": null,
                "details": score.details,
            });
            if !score.members.is_empty() {
                object["members"] = members_json(&score.members);
            }
            object
        }
        Err(e) => {
            json!({"reward": null, "correct": null, "unscorable": e.to_string(), "details": null})
        }
    }
}

/// An f32 reward as the shortest decimal that reads back to it (`1.1`, not `1.100000023841858`).
fn reward_json(reward: f32) -> Value {
    reward
        .to_string()
        .parse::<f64>()
        .map_or(Value::Null, Value::from)
}

fn members_json(members: &[MemberScore]) -> Value {
    let map: Map<String, Value> = members
        .iter()
        .map(|m| (m.name.clone(), outcome_json(&m.outcome)))
        .collect();
    Value::Object(map)
}

impl Evaluation {
    /// The line `grpo score` writes for a sample:
    /// `{"reward": f|null, "correct": bool|null, "unscorable": reason|null, "verifiers": {name: {…}}}`.
    pub fn to_json(&self) -> Value {
        json!({
            "reward": self.reward.as_ref().ok().map(|r| reward_json(*r)),
            "correct": self.correct,
            "unscorable": self.reward.as_ref().err().map(ToString::to_string),
            "verifiers": members_json(&self.members),
        })
    }
}
