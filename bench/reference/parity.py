"""
Reference logits for a GPT-2 checkpoint, for parity checks against our model.

    python3 bench/reference/parity.py --checkpoint DIR --input tokens.json --output logits.json

tokens.json: {"input_ids": [[...], ...],
              "attention_mask": [[...], ...],   (optional, 1 = real, 0 = padding)
              "position_ids": [[...], ...]}     (optional)
Without position_ids the positions are 0..T-1 for every row, as in HF's forward
(pass them explicitly for left padding, e.g. cumsum(mask) - 1).

logits.json: {"shape": [B, T, vocab], "dtype": "float32", "logits": [[[...]]],
              "scores": [[[...]]] (only when the checkpoint has score.weight)}
"""

import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt2_torch import load_checkpoint  # noqa: E402


def as_batch(rows, name):
    t = torch.tensor(rows, dtype=torch.long)
    if t.dim() == 1:  # a single sequence
        t = t.unsqueeze(0)
    if t.dim() != 2:
        raise ValueError(f"{name} must be a list of equal-length token lists")
    return t


def read_inputs(path):
    with open(path) as f:
        data = json.load(f)
    ids = as_batch(data["input_ids"], "input_ids")
    extra = {}
    for key in ("attention_mask", "position_ids"):
        if data.get(key) is not None:
            extra[key] = as_batch(data[key], key)
            if extra[key].shape != ids.shape:
                raise ValueError(f"{key} shape {list(extra[key].shape)} != input_ids {list(ids.shape)}")
    return ids, extra


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="directory with config.json + model.safetensors")
    p.add_argument("--input", required=True, help="tokens.json")
    p.add_argument("--output", required=True, help="where to write logits.json")
    p.add_argument("--float64", action="store_true", help="compute in float64 (output stays float32)")
    args = p.parse_args()

    dtype = torch.float64 if args.float64 else torch.float32
    model = load_checkpoint(args.checkpoint, dtype)
    ids, extra = read_inputs(args.input)
    with torch.no_grad():
        h, _ = model.transformer(ids, extra.get("attention_mask"), extra.get("position_ids"))
        logits = model.head(h).float()
        out = {"shape": list(logits.shape), "dtype": "float32", "float64": args.float64,
               "logits": logits.tolist()}
        if model.score is not None:
            out["scores"] = model.score(h).float().tolist()
    with open(args.output, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
