#!/usr/bin/env python3
"""Golden values for grpo-trainer's advantages and losses, computed independently in numpy
(float64) straight from the papers' formulas and TRL's GRPOTrainer aggregation:

- advantages: DeepSeekMath eq. 4 (group-normalised), batch-std scaling, Dr. GRPO (no scaling),
  RLOO (leave-one-out), REINFORCE++-baseline (group mean, batch whitening); Bessel-corrected std
  as torch.std; unscorable rewards (None) are left out of the statistics.
- losses: every loss_type x importance_sampling_level x kl_estimator, aggregated the way TRL
  does it (grpo: mean of per-sequence means; bnpo: per-micro-batch token mean averaged over
  micro-batches; dapo: global token mean; dr_grpo: sum / (N * max_completion_length)).
- the gradient of one loss w.r.t. log pi_theta, by central finite differences.

Run: python3 crates/trainer/scripts/make_loss_fixtures.py  (needs numpy)
Writes crates/trainer/tests/fixtures/grpo_golden.json.
"""
import json
import os

import numpy as np

EPS_STD = 1e-4


def std(x):
    return float(np.std(x, ddof=1)) if len(x) >= 2 else 0.0


def advantages(rewards, k, estimator, scale):
    out = [None] * len(rewards)
    all_scored = [r for r in rewards if r is not None]
    batch_std = std(all_scored)
    for g in range(0, len(rewards), k):
        idx = [i for i in range(g, g + k) if rewards[i] is not None]
        vals = np.array([rewards[i] for i in idx], dtype=np.float64)
        n = len(vals)
        for j, i in enumerate(idx):
            if estimator == "rloo":
                a = 0.0 if n < 2 else vals[j] - (vals.sum() - vals[j]) / (n - 1)
            else:
                a = vals[j] - vals.mean()
            if estimator != "reinforce_pp_baseline":
                if scale == "group":
                    a = a / (std(vals) + EPS_STD)
                elif scale == "batch":
                    a = a / (batch_std + EPS_STD)
            out[i] = a
    if estimator == "reinforce_pp_baseline":
        a = np.array([x for x in out if x is not None])
        mean, s = a.mean(), std(a)
        out = [None if x is None else (x - mean) / (s + EPS_STD) for x in out]
    return out


def loss(logp, old, ref, adv, mask, cfg, micro):
    """TRL-style loss for the whole batch; `micro` = micro-batch size (bnpo only)."""
    eps_low, eps_high = cfg["epsilon"], cfg["epsilon_high"]
    log_ratio = np.clip(logp - old, -20, 20)
    if cfg["level"] == "token":
        log_w = log_ratio
    else:
        log_w = ((log_ratio * mask).sum(1) / np.maximum(mask.sum(1), 1.0))[:, None]
    w = np.exp(log_w)
    if cfg.get("delta") is not None:
        w = np.minimum(w, cfg["delta"])
    a = adv[:, None]
    per_token = -np.minimum(w * a, np.clip(w, 1 - eps_low, 1 + eps_high) * a)
    per_token = np.broadcast_to(per_token, logp.shape)
    if cfg["beta"] > 0:
        x = np.clip(ref - logp, -20, 20)
        kl = {"k1": -x, "k2": x * x / 2, "k3": np.exp(x) - x - 1}[cfg["kl"]]
        per_token = per_token + cfg["beta"] * kl
    n = logp.shape[0]
    lt = cfg["loss_type"]
    if lt == "grpo":
        return float(((per_token * mask).sum(1) / np.maximum(mask.sum(1), 1)).mean())
    if lt == "dapo":
        return float((per_token * mask).sum() / max(mask.sum(), 1))
    if lt == "dr_grpo":
        return float((per_token * mask).sum() / (n * cfg["max_completion_length"]))
    if lt == "bnpo":
        parts = []
        for s in range(0, n, micro):
            m = mask[s:s + micro]
            parts.append((per_token[s:s + micro] * m).sum() / max(m.sum(), 1))
        return float(np.mean(parts))
    raise ValueError(lt)


def main():
    rng = np.random.default_rng(2025)
    # Two groups of three completions, up to 5 tokens; lengths 5, 3, 4 | 2, 5, 1.
    rewards = [1.0, 0.0, 0.5, 0.0, 0.0, 1.0]
    lengths = [5, 3, 4, 2, 5, 1]
    rows, T = 6, 5
    mask = np.array([[1.0 if t < L else 0.0 for t in range(T)] for L in lengths])
    old = -rng.uniform(0.2, 3.0, size=(rows, T))
    # The current policy moved: some ratios far outside [0.8, 1.28] on both sides.
    logp = old + rng.normal(0.0, 0.35, size=(rows, T))
    ref = old + rng.normal(0.0, 0.2, size=(rows, T))
    adv = np.array(advantages(rewards, 3, "grpo", "group"), dtype=np.float64)

    adv_cases = []
    for rewards_case, k in [
        ([1.0, 0.0, 0.5, 0.0, 0.0, 1.0], 3),
        ([1.0, None, 0.0, 0.25, 0.25, 0.25], 3),  # an unscorable sample; a zero-variance group
        ([0.3, 0.9, None, 2.0], 1),  # G = 1
        ([1.0, None, 0.0, 1.0], 2),  # a group with one scorable sample
    ]:
        for est in ["grpo", "rloo", "reinforce_pp_baseline"]:
            for scale in ["group", "batch", "none"]:
                adv_cases.append({
                    "rewards": rewards_case, "k": k, "estimator": est, "scale": scale,
                    "advantages": advantages(rewards_case, k, est, scale),
                })

    loss_cases = []
    for lt in ["grpo", "bnpo", "dapo", "dr_grpo"]:
        for level in ["token", "sequence"]:
            for kl in ["k1", "k2", "k3"]:
                for beta in ([0.0, 0.04] if kl == "k3" else [0.04]):
                    cfg = {"loss_type": lt, "level": level, "kl": kl, "beta": beta,
                           "epsilon": 0.2, "epsilon_high": 0.28, "delta": None,
                           "max_completion_length": 8}
                    micro = 4 if lt == "bnpo" else 6
                    loss_cases.append({**cfg, "micro_batch_size": micro,
                                       "loss": loss(logp, old, ref, adv, mask, cfg, micro)})
    # Dual clip: a valid δ (> 1 + ε_high, as the trainer's config demands) that binds — some
    # real token with a negative advantage has a ratio above it, so the loss differs from
    # the plain clipped one.
    dual = {"loss_type": "grpo", "level": "token", "kl": "k3", "beta": 0.0, "epsilon": 0.2,
            "epsilon_high": 0.2, "delta": 1.5, "max_completion_length": 8}
    assert dual["delta"] > 1 + dual["epsilon_high"]
    ratio = np.exp(logp - old)
    assert ((ratio > dual["delta"]) & (adv[:, None] < 0) & (mask > 0)).any(), "δ never binds"
    dual_loss = loss(logp, old, ref, adv, mask, dual, 6)
    assert abs(dual_loss - loss(logp, old, ref, adv, mask, {**dual, "delta": None}, 6)) > 1e-3
    loss_cases.append({**dual, "micro_batch_size": 6, "loss": dual_loss})

    # d loss / d logp for one case, central differences in float64.
    grad_cfg = {"loss_type": "grpo", "level": "token", "kl": "k3", "beta": 0.04, "epsilon": 0.2,
                "epsilon_high": 0.28, "delta": None, "max_completion_length": 8}
    h = 1e-6
    grad = np.zeros_like(logp)
    for i in range(rows):
        for t in range(T):
            up, down = logp.copy(), logp.copy()
            up[i, t] += h
            down[i, t] -= h
            grad[i, t] = (loss(up, old, ref, adv, mask, grad_cfg, 6) -
                          loss(down, old, ref, adv, mask, grad_cfg, 6)) / (2 * h)

    out = {
        "batch": {"logprobs": logp.tolist(), "old_logprobs": old.tolist(),
                  "ref_logprobs": ref.tolist(), "mask": mask.tolist(),
                  "lengths": lengths, "advantages": adv.tolist()},
        "advantage_cases": adv_cases,
        "loss_cases": loss_cases,
        "gradient": {**grad_cfg, "micro_batch_size": 6, "grad": grad.tolist()},
    }
    path = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "grpo_golden.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    print("wrote", os.path.normpath(path), len(adv_cases), "advantage cases,", len(loss_cases), "loss cases")


if __name__ == "__main__":
    main()
