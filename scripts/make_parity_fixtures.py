#!/usr/bin/env python3
"""Builds the parity fixtures of grpo-policy from Hugging Face transformers.

For each of a few tiny random-weight models (Llama and Qwen2; grouped-query attention on;
tied and untied LM heads) it writes a Hugging Face model directory -- config.json,
model.safetensors, generation_config.json and a small trained BPE tokenizer.json -- and
reference.json with, for a few prompts, the token ids, the logits at every position and the
greedy continuation, all computed by transformers in float32. The Rust tests in
crates/policy/tests/parity.rs load each directory and must reproduce them.

Not run by CI (it needs torch). To regenerate:

    python3 -m venv /tmp/parity && /tmp/parity/bin/pip install -r scripts/requirements-parity.txt
    /tmp/parity/bin/python scripts/make_parity_fixtures.py crates/policy/tests/fixtures
"""
import json
import pathlib
import shutil
import sys

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

PROMPTS = [
    "What is 12+7?",
    "Janet sells 16 eggs a day.",
    "x",
]
GREEDY_TOKENS = 8
CORPUS = [
    "What is 12+7? The answer is 19.",
    "Compute 3 plus 4. Then 3+4=7.",
    "Janet's ducks lay 16 eggs per day. She eats three for breakfast.",
    "She sells the remainder at the farmers' market daily for $2 per egg.",
    "How many bolts in total does it take? #### 3",
    "<think>Let me add the numbers.</think><answer>42</answer>",
] * 20


def train_tokenizer(directory):
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<|endoftext|>", "<|pad|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(CORPUS, trainer=trainer)
    tokenizer.save(str(directory / "tokenizer.json"))
    return tokenizer


def randomize(model, generator):
    """Weights large enough that every part of the network moves the logits."""
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("norm.weight"):
                parameter.copy_(1.0 + 0.1 * torch.randn(parameter.shape, generator=generator))
            else:
                parameter.copy_(0.15 * torch.randn(parameter.shape, generator=generator))


def greedy(model, ids):
    """Argmax decoding by full recomputation: the plainest possible reference."""
    ids = list(ids)
    out = []
    for _ in range(GREEDY_TOKENS):
        logits = model(torch.tensor([ids])).logits[0, -1]
        token = int(torch.argmax(logits))
        out.append(token)
        ids.append(token)
    return out


def build(root, name, config_class, model_class, tokenizer, seed, **overrides):
    directory = root / name
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    vocab = tokenizer.get_vocab_size()
    eos = tokenizer.token_to_id("<|endoftext|>")
    pad = tokenizer.token_to_id("<|pad|>")
    config = config_class(
        vocab_size=vocab,
        hidden_size=48,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        rms_norm_eps=1e-6,
        bos_token_id=eos,
        eos_token_id=eos,
        pad_token_id=pad,
        torch_dtype="float32",
        **overrides,
    )
    torch.manual_seed(seed)
    model = model_class(config).eval()
    randomize(model, torch.Generator().manual_seed(seed))
    if config.tie_word_embeddings:
        model.tie_weights()
    model.save_pretrained(directory, safe_serialization=True)
    tokenizer.save(str(directory / "tokenizer.json"))

    cases = []
    with torch.no_grad():
        for text in PROMPTS:
            ids = tokenizer.encode(text).ids
            logits = model(torch.tensor([ids])).logits[0]
            cases.append({
                "text": text,
                "ids": ids,
                "logits": [[round(float(x), 6) for x in row] for row in logits],
                "greedy": greedy(model, ids),
            })
    (directory / "reference.json").write_text(json.dumps({"model": name, "cases": cases}))
    print(f"{name}: {sum(p.numel() for p in model.parameters())} parameters")


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "crates/policy/tests/fixtures")
    root.mkdir(parents=True, exist_ok=True)
    scratch = root / ".tokenizer"
    scratch.mkdir(exist_ok=True)
    tokenizer = train_tokenizer(scratch)
    shutil.rmtree(scratch)
    # Three RoPE bases, so that reading the base from the config is tested too.
    build(root, "llama-untied", LlamaConfig, LlamaForCausalLM, tokenizer, 1, tie_word_embeddings=False, rope_theta=10000.0)
    build(root, "llama-tied", LlamaConfig, LlamaForCausalLM, tokenizer, 2, tie_word_embeddings=True, rope_theta=50.0)
    build(root, "qwen2-tied", Qwen2Config, Qwen2ForCausalLM, tokenizer, 3, tie_word_embeddings=True, rope_theta=1000000.0)


if __name__ == "__main__":
    main()
