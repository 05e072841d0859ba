//! One recipe over several seeds: each seed a whole run in `seed-K/`, then one table of every
//! arm × split as a mean with its 95% interval over seeds, and GRPO − control per split (paired
//! by seed) with its interval. One run ranks nothing: on the main job the sign of GRPO − control
//! flipped with the sampling draw alone.

use std::collections::BTreeMap;
use std::path::Path;

use grpo_policy::burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::error::{RecipeError, Result};
use crate::run::{Results, Run, write_atomic};
use crate::stats::{Interval, mean_interval, wilson};

/// Every seed's results and their summary (`results.json` of a sweep).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeedResults {
    /// The run seed of each replicate (the config's seed, + 1, + 2, …).
    pub seeds: Vec<u64>,
    pub runs: Vec<Results>,
    /// arm → split → mean and 95% interval over seeds.
    pub arms: BTreeMap<String, BTreeMap<String, Interval>>,
    /// split → GRPO − SFT control, paired by seed (when the run has a control arm).
    pub grpo_minus_control: BTreeMap<String, Interval>,
}

impl Run {
    /// Runs the recipe `seeds` times into `out/seed-0`, `out/seed-1`, …: replicate k adds k to
    /// the run's, the warm-up's and GRPO's seeds (model initialisation, task rows, data order,
    /// sampling all change). With `resume`, finished replicates are read back and an
    /// interrupted one continues from its checkpoint.
    pub fn execute_seeds(
        &self,
        out: &Path,
        device: &Device,
        seeds: usize,
        resume: bool,
    ) -> Result<SeedResults> {
        if seeds == 0 {
            return Err(RecipeError::config("--seeds", "must be at least 1"));
        }
        std::fs::create_dir_all(out).map_err(|e| RecipeError::io(out, e))?;
        let mut runs = Vec::with_capacity(seeds);
        let mut seed_list = Vec::with_capacity(seeds);
        for k in 0..seeds as u64 {
            let dir = out.join(format!("seed-{k}"));
            let replicate = self.with_seed_offset(k);
            seed_list.push(replicate.config.seed);
            let done = dir.join("results.json");
            let results = if resume && done.exists() {
                let text = std::fs::read_to_string(&done).map_err(|e| RecipeError::io(&done, e))?;
                serde_json::from_str(&text)
                    .map_err(|e| RecipeError::config(done.display().to_string(), e))?
            } else {
                eprintln!(
                    "seed {} of {seeds} (run seed {})",
                    k + 1,
                    replicate.config.seed
                );
                replicate.execute(&dir, device, resume)?
            };
            runs.push(results);
        }
        let summary = summarize(seed_list, runs);
        let json = serde_json::to_string_pretty(&summary).expect("results serialize");
        write_atomic(&out.join("results.json"), json.as_bytes())?;
        write_atomic(&out.join("results.md"), summary.markdown().as_bytes())?;
        Ok(summary)
    }

    fn with_seed_offset(&self, k: u64) -> Run {
        let mut config = self.config.clone();
        config.seed = config.seed.wrapping_add(k);
        config.grpo.seed = config.grpo.seed.wrapping_add(k);
        if let Some(sft) = &mut config.sft {
            sft.seed = sft.seed.wrapping_add(k);
        }
        Run {
            config,
            verifiers: self.verifiers.clone(),
            environment: self.environment.clone(),
            // Saved as the replicate's run.toml: say how it differs from the file.
            text: format!(
                "{}\n# replicate {k} of a seed sweep: the run's, [sft]'s and [grpo]'s seeds each + {k}\n",
                self.text.trim_end()
            ),
        }
    }
}

/// The intervals of `runs` (one per seed).
pub fn summarize(seeds: Vec<u64>, runs: Vec<Results>) -> SeedResults {
    let mut arms: BTreeMap<String, BTreeMap<String, Interval>> = BTreeMap::new();
    for (arm, splits) in runs.first().map(|r| &r.arms).into_iter().flatten() {
        for split in splits.keys() {
            let values: Vec<f64> = runs
                .iter()
                .filter_map(|r| r.arms.get(arm)?.get(split).copied())
                .collect();
            arms.entry(arm.clone())
                .or_default()
                .insert(split.clone(), mean_interval(&values));
        }
    }
    let mut grpo_minus_control = BTreeMap::new();
    if let Some(splits) = runs.first().and_then(|r| r.arms.get("grpo")) {
        for split in splits.keys() {
            let differences: Vec<f64> = runs
                .iter()
                .filter_map(|r| {
                    Some(r.arms.get("grpo")?.get(split)? - r.arms.get("sft_control")?.get(split)?)
                })
                .collect();
            if differences.len() == runs.len() {
                grpo_minus_control.insert(split.clone(), mean_interval(&differences));
            }
        }
    }
    SeedResults {
        seeds,
        runs,
        arms,
        grpo_minus_control,
    }
}

impl SeedResults {
    /// One row per split: each arm's mean [95% interval over seeds], GRPO − control, and the
    /// binomial 95% half-width of a single run at that split's size, the largest over the arms
    /// (how far one run's figure may sit from its own expectation).
    pub fn markdown(&self) -> String {
        let points = |v: f64| 100.0 * v;
        let cell = |i: &Interval| match (i.low, i.high) {
            (Some(low), Some(high)) => {
                format!(
                    "{:.1} [{:.1}, {:.1}]",
                    points(i.mean),
                    points(low),
                    points(high)
                )
            }
            _ => format!("{:.1}", points(i.mean)),
        };
        let arms: Vec<&str> = crate::run::ARMS
            .into_iter()
            .filter(|a| self.arms.contains_key(*a))
            .collect();
        let control = !self.grpo_minus_control.is_empty();
        let mut out = format!(
            "Greedy pass@1 (%), mean [95% interval] over {} seeds ({}):\n\n| split | {}{} | one run ± |\n|---|{}{}---|\n",
            self.seeds.len(),
            self.seeds
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            arms.join(" | "),
            if control { " | grpo − control" } else { "" },
            "---|".repeat(arms.len()),
            if control { "---|" } else { "" },
        );
        let splits = self
            .arms
            .values()
            .next()
            .map(|m| m.keys().collect::<Vec<_>>());
        for split in splits.unwrap_or_default() {
            let mut cells: Vec<String> = arms.iter().map(|a| cell(&self.arms[*a][split])).collect();
            if let Some(d) = self.grpo_minus_control.get(split) {
                cells.push(cell(d));
            }
            let rows = self.runs.first().and_then(|r| r.rows.get(split)).copied();
            let widest = rows.and_then(|n| {
                arms.iter()
                    .filter_map(|a| wilson(self.arms[*a][split].mean, n).half_width())
                    .reduce(f64::max)
            });
            let binomial = widest.map_or("–".to_owned(), |h| format!("{:.1}", points(h)));
            out.push_str(&format!(
                "| {split} | {} | {binomial} |\n",
                cells.join(" | ")
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(grpo: f64, control: f64) -> Results {
        let arm = |v: f64| BTreeMap::from([("test".to_owned(), v)]);
        Results {
            arms: BTreeMap::from([
                ("warmup".to_owned(), arm(0.5)),
                ("grpo".to_owned(), arm(grpo)),
                ("sft_control".to_owned(), arm(control)),
            ]),
            tool_calls: BTreeMap::new(),
            rows: BTreeMap::from([("test".to_owned(), 100)]),
            wall_s: 1.0,
            phases_s: BTreeMap::new(),
            pass_rate_filter: BTreeMap::new(),
        }
    }

    #[test]
    fn the_difference_is_paired_by_seed() {
        // GRPO − control per seed: 0.10, 0.05, 0.15 → mean 0.10, s = 0.05, ± 4.303·0.05/√3.
        let summary = summarize(
            vec![7, 8, 9],
            vec![run(0.70, 0.60), run(0.80, 0.75), run(0.75, 0.60)],
        );
        let d = summary.grpo_minus_control["test"];
        assert!((d.mean - 0.10).abs() < 1e-12);
        assert!((d.half_width().unwrap() - 4.303 * 0.05 / 3f64.sqrt()).abs() < 1e-9);
        let grpo = summary.arms["grpo"]["test"];
        assert!((grpo.mean - 0.75).abs() < 1e-12 && grpo.n == 3);
        // The warm-up is the same on every seed here: a zero-width interval.
        assert_eq!(summary.arms["warmup"]["test"].half_width(), Some(0.0));
        let table = summary.markdown();
        assert!(table.contains("over 3 seeds (7, 8, 9)"), "{table}");
        // grpo 75.0 [62.6, 87.4]; the difference 10.0 [-2.4, 22.4]; one run at p = 0.5, n = 100:
        // Wilson's half-width 9.6 points.
        assert!(
            table.contains("| test | 50.0 [50.0, 50.0] | 75.0 [62.6, 87.4] | 65.0 ["),
            "{table}"
        );
        assert!(table.contains("| 10.0 [-2.4, 22.4] | 9.6 |"), "{table}");
    }

    #[test]
    fn without_a_control_arm_there_is_no_difference() {
        let mut alone = run(0.7, 0.0);
        alone.arms.remove("sft_control");
        let summary = summarize(vec![1], vec![alone]);
        assert!(summary.grpo_minus_control.is_empty());
        assert!(!summary.markdown().contains("control"));
    }
}
