#!/usr/bin/env bash
# The side-by-side benchmark: TRL's GRPOTrainer (PyTorch, CPU) and grpo's train_step_throughput
# on the same workload, one after the other in one run, then both medians and their ratio.
# Figures on a shared machine drift between runs; only the ratio of one run means anything.
#
#   python3 -m venv .venv-bench && .venv-bench/bin/pip install -r scripts/requirements-bench.txt
#   scripts/bench_vs_trl.sh
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv-bench/bin/python}
features=ndarray,wgpu # the test build's features: no second compile of burn
cargo build --release --features "$features" --bin grpo --example train_step_throughput
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
target/release/grpo data make arithmetic --split train -n 64 --seed 0 -o "$work/prompts.jsonl"

echo "== TRL + PyTorch ($("$python" -c 'import torch, trl; print(f"trl {trl.__version__}, torch {torch.__version__}")'))"
"$python" scripts/bench_trl.py --prompts "$work/prompts.jsonl" --output-dir "$work/trl" | tee "$work/trl.txt"
echo "== grpo (flex)"
target/release/examples/train_step_throughput flex | tee "$work/grpo.txt"

field() { awk -v key="$2" '{ for (i = 1; i < NF; i++) if ($i == key) print $(i + 1) }' "$1" | head -1; }
trl_step=$(field "$work/trl.txt" step_s)
trl_update=$(field "$work/trl.txt" update_s)
trl_sample=$(field "$work/trl.txt" sample_s)
hf_rate=$(field "$work/trl.txt" tokens_per_s)
ours_step=$(field "$work/grpo.txt" step_s)
ours_update=$(field "$work/grpo.txt" update_s)
ours_sample=$(field "$work/grpo.txt" sample_s)
ours_rate=$(field "$work/grpo.txt" sample_tokens_per_s)
echo "== side by side (medians; ratio = grpo / TRL, lower is faster)"
awk -v a="$ours_step" -v b="$trl_step" -v c="$ours_update" -v d="$trl_update" \
    -v e="$ours_sample" -v f="$trl_sample" -v g="$ours_rate" -v h="$hf_rate" 'BEGIN {
  printf "step    grpo %6.2f s   TRL %6.2f s   ratio %.2f\n", a, b, a / b
  printf "update  grpo %6.2f s   TRL %6.2f s   ratio %.2f\n", c, d, c / d
  printf "sample  grpo %6.2f s   TRL %6.2f s   ratio %.2f\n", e, f, e / f
  printf "tokens/s sampling: grpo %.0f   HF generate %.0f   speed-up %.2fx\n", g, h, g / h
}'
