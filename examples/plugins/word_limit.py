#!/usr/bin/env python3
"""A grpo verifier plugin in Python: rewards completions that keep within a word budget.

Use it from a V.toml:

    [[verifiers]]
    kind = "external"
    name = "brevity"
    command = ["python3", "examples/plugins/word_limit.py"]
    timeout_s = 5

Protocol (see grpo_verifiers::external): one JSON request per line on stdin,
{"prompt", "completion", "fields"}; one JSON reply per line on stdout, either
{"reward", "correct"?, "details"?} or {"unscorable": reason}. Exit when stdin closes.
"""
import json
import sys

DEFAULT_LIMIT = 50


def score(request):
    limit = request["fields"].get("max_words", DEFAULT_LIMIT)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit <= 0:
        return {"unscorable": f"max_words must be a positive integer, got {limit!r}"}
    words = len(request["completion"].split())
    within = words <= limit
    # Full reward within the budget, then linearly less, reaching 0 at twice the budget.
    reward = 1.0 if within else max(0.0, 1.0 - (words - limit) / limit)
    return {"reward": reward, "correct": within, "details": f"{words} words (limit {limit})"}


def main():
    for line in sys.stdin:
        reply = score(json.loads(line))
        # One line per reply, flushed: grpo waits for it.
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
