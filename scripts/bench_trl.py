#!/usr/bin/env python3
"""The peer side of the side-by-side benchmark: Hugging Face TRL's GRPOTrainer (PyTorch, CPU)
on the workload `train_step_throughput` runs, and HF `generate` against our sampler.

Workload (the README's benchmark section): a Llama with d_model 256, 4 layers, 8 heads (8 KV
heads), SwiGLU 680, a byte vocabulary of 259 (256 bytes + BOS/EOS/PAD, as grpo's
ByteTokenizer), tied embeddings, random weights (normal 0.02, HF's init); one GRPO step = 8
prompts x K = 8 completions x 64 new tokens (EOS suppressed with min_new_tokens), beta = 0.04
(TRL builds the reference model), mu = 1, loss_type "grpo", torch threads = 2. The prompts are
the same rows grpo uses (`grpo data make arithmetic --split train -n 64 --seed 0`). The
reward is the share of digits in the completion, as in the Rust example.

Prints one line per measurement in a fixed format that `scripts/bench_vs_trl.sh` reads:

    trl step_s <median> sample_s <median> update_s <median>
    hf_generate tokens_per_s <median>

Install (once, from PyPI; not needed to build, test or run grpo):

    python3 -m venv .venv-bench && .venv-bench/bin/pip install -r scripts/requirements-bench.txt
"""
import argparse
import json
import statistics
import time

import torch
from datasets import Dataset
from tokenizers import Tokenizer, models, pre_tokenizers, decoders
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast, TrainerCallback
from trl import GRPOConfig, GRPOTrainer

BOS, EOS, PAD, VOCAB = 256, 257, 258, 259


def byte_tokenizer():
    """One token per byte, ids = byte values, then BOS/EOS/PAD: grpo's ByteTokenizer."""
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    # ByteLevel maps byte b to a printable character; order the vocabulary by byte value.
    table = bytes_to_unicode()
    vocab = {table[b]: b for b in range(256)}
    assert set(vocab) == set(alphabet)
    vocab.update({"<bos>": BOS, "<eos>": EOS, "<pad>": PAD})
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tokenizer.decoder = decoders.ByteLevel()
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>"
    )
    wrapped.padding_side = "left"
    return wrapped


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable character table (what ByteLevel uses)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(
        range(ord("®"), ord("ÿ") + 1)
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def model(seed):
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=256,
        intermediate_size=680,
        num_hidden_layers=4,
        num_attention_heads=8,
        num_key_value_heads=8,
        max_position_embeddings=4096,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        tie_word_embeddings=True,
        bos_token_id=BOS,
        eos_token_id=EOS,
        pad_token_id=PAD,
        initializer_range=0.02,
    )
    return LlamaForCausalLM(config).float()


def digit_share(completions, **_):
    return [sum(c.isdigit() for c in text) / 64.0 for text in completions]


class StepTimer(TrainerCallback):
    def __init__(self):
        self.started = None
        self.steps = []

    def on_step_begin(self, args, state, control, **kwargs):
        self.started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.steps.append(time.perf_counter() - self.started)


def bench_trl(prompts, steps, output_dir):
    tokenizer = byte_tokenizer()
    # TRL builds its reference model from the policy's path, as users run it: save the random
    # model once and hand TRL the directory.
    model_dir = f"{output_dir}/model"
    model(0).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    args = GRPOConfig(
        output_dir=output_dir,
        per_device_train_batch_size=64,  # completions per step: 8 prompts x 8
        num_generations=8,
        gradient_accumulation_steps=1,
        max_completion_length=64,
        generation_kwargs={"min_new_tokens": 64},  # EOS suppressed: every completion is 64 tokens
        beta=0.04,
        num_iterations=1,
        loss_type="grpo",
        learning_rate=1e-4,
        lr_scheduler_type="constant",
        # TRL turns activation checkpointing on by default; grpo does not recompute the
        # forward, so the peer runs the same arithmetic without it.
        gradient_checkpointing=False,
        max_steps=steps,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        bf16=False,
        dataloader_num_workers=0,
        log_completions=False,
        seed=0,
        model_init_kwargs={"dtype": torch.float32},
    )
    trainer = GRPOTrainer(
        model=model_dir,
        reward_funcs=[digit_share],
        args=args,
        train_dataset=Dataset.from_list([{"prompt": p} for p in prompts]),
        processing_class=tokenizer,
    )
    # Split each step into generation (sampling) and the rest, as grpo reports it.
    sampling = []
    generate = trainer._generate

    def timed_generate(*a, **kw):
        t = time.perf_counter()
        out = generate(*a, **kw)
        sampling.append(time.perf_counter() - t)
        return out

    trainer._generate = timed_generate
    timer = StepTimer()
    trainer.add_callback(timer)
    trainer.train()
    after = slice(1, None)  # the first step is a warm-up
    step = statistics.median(timer.steps[after])
    sample = statistics.median(sampling[after])
    update = statistics.median([s - g for s, g in zip(timer.steps[after], sampling[after])])
    print(f"trl step_s {step:.3f} sample_s {sample:.3f} update_s {update:.3f}", flush=True)


def bench_generate(prompts, repeats):
    """HF generate with its KV cache: K = 8 sampled completions of each of 8 prompts, 64 tokens."""
    tokenizer = byte_tokenizer()
    policy = model(0).eval()
    rows = [p for p in prompts[:8] for _ in range(8)]
    batch = tokenizer(rows, return_tensors="pt", padding=True, add_special_tokens=False)
    rates = []
    with torch.no_grad():
        for _ in range(repeats + 1):
            t = time.perf_counter()
            out = policy.generate(
                **batch,
                do_sample=True,
                max_new_tokens=64,
                min_new_tokens=64,
                use_cache=True,
                pad_token_id=PAD,
                eos_token_id=EOS,
            )
            elapsed = time.perf_counter() - t
            new = out.shape[1] - batch["input_ids"].shape[1]
            assert new == 64, new
            rates.append(len(rows) * new / elapsed)
    print(f"hf_generate tokens_per_s {statistics.median(rates[1:]):.0f}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", required=True, help="JSONL rows with a 'prompt' field")
    parser.add_argument("--steps", type=int, default=6, help="GRPO steps (the first is a warm-up)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output-dir", default="/tmp/bench_trl")
    parser.add_argument("--skip-generate", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with open(args.prompts) as f:
        prompts = [json.loads(line)["prompt"] for line in f if line.strip()]
    bench_trl(prompts, args.steps, args.output_dir)
    if not args.skip_generate:
        bench_generate(prompts, 3)


if __name__ == "__main__":
    main()
