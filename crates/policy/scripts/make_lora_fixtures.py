#!/usr/bin/env python3
"""Builds the LoRA fixtures of grpo-policy with Hugging Face peft.

For two of the parity fixture models (crates/policy/tests/fixtures/qwen2-tied and
llama-untied, made by scripts/make_parity_fixtures.py) it attaches a LoRA adapter with peft,
with random A *and* B (init_lora_weights=False, so that the adapter moves the logits), saves it
with `save_pretrained` (adapter_config.json + adapter_model.safetensors: peft's own format and
names) and writes reference.json: for the parity prompts, the token ids and the logits of the
adapted model at every position, computed by peft + transformers in float32. The Rust tests in
crates/policy/tests/lora.rs load base + adapter and must reproduce them.

  qwen2-tied-lora    r 4, lora_alpha 8, target_modules "all-linear" (every projection)
  llama-untied-lora  r 2, lora_alpha 4, use_rslora, target_modules ["self_attn.q_proj", "v_proj"]
                     (peft's suffix form, and its default pair)

Not run by CI (it needs torch). To regenerate:

    python3 -m venv /tmp/parity && /tmp/parity/bin/pip install -r scripts/requirements-parity.txt
    /tmp/parity/bin/python crates/policy/scripts/make_lora_fixtures.py crates/policy/tests/fixtures

With `--check BASE ADAPTER LOGITS` it instead loads an adapter written by grpo onto BASE with
peft and compares peft's logits with grpo's (LOGITS), printing the largest difference. The
GRPO LoRA test writes all three when asked (a tiny model, an adapter trained for 4 steps):

    GRPO_EXPORT_ADAPTER=/tmp/lora cargo test --release --workspace --features ndarray,wgpu \
        --test training lora_trains_only
    /tmp/parity/bin/python crates/policy/scripts/make_lora_fixtures.py --check \
        /tmp/lora /tmp/lora /tmp/lora/grpo_logits.json
"""
import json
import pathlib
import shutil
import sys

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM

PROMPTS = ["What is 12+7?", "Janet sells 16 eggs a day.", "x"]


def build(root, base_name, name, seed, **lora):
    base_dir = root / base_name
    directory = root / name
    if directory.exists():
        shutil.rmtree(directory)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32).eval()
    config = LoraConfig(init_lora_weights=False, lora_dropout=0.0, task_type="CAUSAL_LM", **lora)
    model = get_peft_model(model, config).eval()
    model.save_pretrained(directory)
    (directory / "README.md").unlink()  # peft's model card: not a fixture
    tokenizer = Tokenizer.from_file(str(base_dir / "tokenizer.json"))
    cases = []
    with torch.no_grad():
        for text in PROMPTS:
            ids = tokenizer.encode(text).ids
            logits = model(input_ids=torch.tensor([ids])).logits[0]
            cases.append({
                "text": text,
                "ids": ids,
                "logits": [[round(float(x), 6) for x in row] for row in logits],
            })
    (directory / "reference.json").write_text(
        json.dumps({"base": base_name, "adapter": name, "cases": cases})
    )
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(f"{name}: {trainable} adapter parameters on {base_name}")


def check(base_dir, adapter_dir, logits_file):
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32).eval()
    model = PeftModel.from_pretrained(model, adapter_dir).eval()
    expected = json.loads(pathlib.Path(logits_file).read_text())
    worst = 0.0
    with torch.no_grad():
        for case in expected["cases"]:
            logits = model(input_ids=torch.tensor([case["ids"]])).logits[0]
            diff = (logits - torch.tensor(case["logits"])).abs().max().item()
            worst = max(worst, diff)
    print(f"peft vs grpo logits, {len(expected['cases'])} prompts: max abs diff {worst:.3g}")
    sys.exit(0 if worst <= 1e-4 else 1)


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "--check":
        check(*sys.argv[2:])
        return
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "crates/policy/tests/fixtures")
    build(root, "qwen2-tied", "qwen2-tied-lora", 11, r=4, lora_alpha=8, target_modules="all-linear")
    build(
        root, "llama-untied", "llama-untied-lora", 12,
        r=2, lora_alpha=4, use_rslora=True, target_modules=["self_attn.q_proj", "v_proj"],
    )


if __name__ == "__main__":
    main()
