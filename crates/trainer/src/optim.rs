//! One optimiser step, shared by GRPO and SFT: the learning-rate schedule, the global
//! gradient-norm clip, the NaN/inf guard, and AdamW.

use grpo_policy::burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use grpo_policy::burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use grpo_policy::burn::tensor::Tensor;

use crate::config::Schedule;

/// The settings an optimiser step needs (taken from `GrpoConfig` or `SftConfig`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OptimSettings {
    pub learning_rate: f64,
    pub schedule: Schedule,
    pub warmup_steps: usize,
    pub max_steps: usize,
    pub max_grad_norm: Option<f32>,
    pub weight_decay: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub epsilon: f32,
}

/// What a step did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepReport {
    /// The global gradient norm before clipping.
    pub grad_norm: f32,
    /// Set when the gradients were not finite: the weights were left untouched.
    pub skipped: bool,
}

/// AdamW with a schedule and a global-norm clip.
#[derive(Clone)]
pub struct Optimizer {
    settings: OptimSettings,
    adamw: ModuleOptimizer,
}

impl Optimizer {
    pub fn new(settings: OptimSettings) -> Optimizer {
        let adamw = AdamWConfig::new()
            .with_beta_1(settings.beta1)
            .with_beta_2(settings.beta2)
            .with_epsilon(settings.epsilon)
            .with_weight_decay(settings.weight_decay)
            .init();
        Optimizer { settings, adamw }
    }

    /// The learning rate of optimiser step `step` (0-based): linear warm-up, then the schedule.
    pub fn learning_rate(&self, step: usize) -> f64 {
        let s = &self.settings;
        if step < s.warmup_steps {
            return s.learning_rate * (step + 1) as f64 / s.warmup_steps as f64;
        }
        let decay_steps = s.max_steps.saturating_sub(s.warmup_steps).max(1) as f64;
        let progress = ((step - s.warmup_steps) as f64 / decay_steps).min(1.0);
        match s.schedule {
            Schedule::Constant => s.learning_rate,
            Schedule::Linear => s.learning_rate * (1.0 - progress),
            Schedule::Cosine => {
                s.learning_rate * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            }
        }
    }

    /// Clips `grads` to the global norm, then steps AdamW at `learning_rate`; non-finite
    /// gradients skip the step and return the model as it was.
    pub fn step<M: Module>(
        &mut self,
        model: M,
        mut grads: GradientsParams,
        learning_rate: f64,
    ) -> (M, StepReport) {
        let grad_norm = global_norm(&model, &grads);
        if !grad_norm.is_finite() {
            return (
                model,
                StepReport {
                    grad_norm,
                    skipped: true,
                },
            );
        }
        if let Some(max) = self.settings.max_grad_norm
            && grad_norm > max
        {
            // torch.nn.utils.clip_grad_norm_: scale by max / (norm + 1e-6).
            let scale = max / (grad_norm + 1e-6);
            model.visit(&mut Scale {
                grads: &mut grads,
                scale,
            });
        }
        let model = self.adamw.step(learning_rate, model, grads);
        (
            model,
            StepReport {
                grad_norm,
                skipped: false,
            },
        )
    }

    /// The optimiser state (moments and step counts), in burn's burnpack format.
    pub fn save(&self, path: &std::path::Path) -> Result<(), String> {
        self.adamw.save(path).map_err(|e| e.to_string())
    }

    pub fn load(self, path: &std::path::Path) -> Result<Optimizer, String> {
        let adamw = self.adamw.load(path).map_err(|e| e.to_string())?;
        Ok(Optimizer { adamw, ..self })
    }
}

/// `sqrt(Σ ‖g‖²)` over every parameter's gradient.
fn global_norm<M: Module>(model: &M, grads: &GradientsParams) -> f32 {
    struct SumSquares<'a> {
        grads: &'a GradientsParams,
        total: Option<Tensor<1>>,
    }
    impl ModuleVisitor for SumSquares<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(grad) = self.grads.get::<D>(param.id) {
                let squares = grad.powi_scalar(2).sum();
                self.total = Some(match self.total.take() {
                    Some(total) => total + squares,
                    None => squares,
                });
            }
        }
    }
    let mut visitor = SumSquares { grads, total: None };
    model.visit(&mut visitor);
    visitor
        .total
        .map(|t| t.into_scalar::<f32>().sqrt())
        .unwrap_or(0.0)
}

struct Scale<'a> {
    grads: &'a mut GradientsParams,
    scale: f32,
}

impl ModuleVisitor for Scale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.remove::<D>(param.id) {
            self.grads
                .register::<D>(param.id, grad.mul_scalar(self.scale));
        }
    }
}

/// Gives the parameters ids 1, 2, 3, … in visiting order. The optimiser keys its state by
/// parameter id, and a model built or loaded anew gets random ids: numbering them the same way
/// every time is what lets a checkpoint's optimiser state find its parameters again.
pub fn number_parameters<M: Module>(model: M) -> M {
    struct Number(u64);
    impl ModuleMapper for Number {
        fn map_float<const D: usize>(&mut self, mut param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            self.0 += 1;
            param.id = ParamId::from(self.0);
            param
        }
    }
    model.map(&mut Number(0))
}
