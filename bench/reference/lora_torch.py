"""
LoRA (Hu et al., 2021) in plain PyTorch, as PEFT computes and saves it, without the peft
library: the independent reference for RLHF Studio's adapters. It wraps the projections of
the reference GPT-2 (gpt2_torch.py, Conv1D weights [in, out]) or Llama (llama_torch.py,
torch.nn.Linear weights [out, in]) whose names match target_modules as PEFT matches them
(the whole name, or its last parts after a "."), adds scaling * (x A^T) B^T to each with
A [r, in] and B [out, r] whatever the weight's layout, scaling = lora_alpha / r (or
lora_alpha / sqrt(r) with use_rslora), and writes the adapter in PEFT's layout:

    adapter_config.json        peft_type "LORA", r, lora_alpha, target_modules, fan_in_fan_out, ...
    adapter_model.safetensors  base_model.model.<HF module name>.lora_A.weight / .lora_B.weight

Write an adapter for a base checkpoint, and the adapted model's logits of each prompt alone:

    python3 bench/reference/lora_torch.py adapter --base DIR --family gpt2|llama --out DIR \
        --targets c_attn c_fc [--r 4] [--alpha 8] [--rslora] [--seed 0] [--b-std 0.05] \
        [--prompts '[[5, 17, 3], [61, 2]]']

reference.json: {"prompts": [[...]], "logits": [[[...]]] (each prompt alone, [T, V])}
"""

import argparse
import json
import math
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpt2_torch  # noqa: E402
import llama_torch  # noqa: E402
from gpt2_torch import write_safetensors  # noqa: E402

# HF's name of the trunk in each family's module tree, which the reference models leave out
# (GPT-2) or keep (Llama's "model.").
HF_PREFIX = {"gpt2": "transformer.", "llama": ""}


class LoraLayer(nn.Module):
    """A frozen projection plus its trained low-rank path: base(x) + scaling * (x A^T) B^T."""

    def __init__(self, base, n_in, n_out, r, alpha, use_rslora):
        super().__init__()
        self.base = base
        self.lora_A = nn.Linear(n_in, r, bias=False)
        self.lora_B = nn.Linear(r, n_out, bias=False)
        self.scaling = alpha / math.sqrt(r) if use_rslora else alpha / r
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)

    def forward(self, x):
        return self.base(x) + self.lora_B(self.lora_A(x)) * self.scaling


def widths(module):
    """(in, out) of a projection: Conv1D stores its weight [in, out], nn.Linear [out, in]."""
    w = module.weight
    return tuple(w.shape) if isinstance(module, gpt2_torch.Conv1D) else (w.shape[1], w.shape[0])


def matches(key, targets):
    return any(key == t or key.endswith("." + t) for t in targets)


def inject(model, prefix, targets, r, alpha, use_rslora):
    """Replaces every matching projection by a LoraLayer; returns {HF module name: layer}."""
    layers = {}
    for name, module in list(model.named_modules()):
        if not isinstance(module, (gpt2_torch.Conv1D, nn.Linear)) or name in ("lm_head", "score"):
            continue
        if not matches(prefix + name, targets):
            continue
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        layer = LoraLayer(module, *widths(module), r, alpha, use_rslora)
        setattr(parent, child, layer)
        layers[prefix + name] = layer
    if not layers:
        raise SystemExit(f"target_modules {targets} match no module")
    return layers


def save_adapter(layers, out, base, family, targets, r, alpha, use_rslora):
    os.makedirs(out, exist_ok=True)
    config = dict(
        peft_type="LORA", task_type="CAUSAL_LM", base_model_name_or_path=base, r=r, lora_alpha=alpha,
        lora_dropout=0.0, target_modules=targets, modules_to_save=None, use_rslora=use_rslora,
        fan_in_fan_out=family == "gpt2", bias="none", init_lora_weights=True, inference_mode=True,
    )
    with open(os.path.join(out, "adapter_config.json"), "w") as f:
        json.dump(config, f, indent=2)
    tensors = {}
    for name, layer in layers.items():
        tensors[f"base_model.model.{name}.lora_A.weight"] = layer.lora_A.weight.detach()
        tensors[f"base_model.model.{name}.lora_B.weight"] = layer.lora_B.weight.detach()
    write_safetensors(os.path.join(out, "adapter_model.safetensors"), tensors)


def logits(model, prompt):
    return model(torch.tensor([prompt]))[0][0].tolist()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["adapter"])
    p.add_argument("--base", required=True, help="base checkpoint folder (config.json + model.safetensors)")
    p.add_argument("--family", required=True, choices=["gpt2", "llama"])
    p.add_argument("--out", required=True, help="adapter folder to write")
    p.add_argument("--targets", nargs="+", required=True)
    p.add_argument("--r", type=int, default=4)
    p.add_argument("--alpha", type=float, default=8)
    p.add_argument("--rslora", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--b-std", type=float, default=0.05, help="draw lora_B from N(0, std²) (PEFT starts it at 0)")
    p.add_argument("--prompts", default="[[5, 17, 3, 88, 42, 9], [61, 2]]")
    a = p.parse_args()

    torch.manual_seed(a.seed)
    load = gpt2_torch.load_checkpoint if a.family == "gpt2" else llama_torch.load_checkpoint
    model = load(a.base)
    layers = inject(model, HF_PREFIX[a.family], a.targets, a.r, a.alpha, a.rslora)
    with torch.no_grad():
        for layer in layers.values():
            layer.lora_B.weight.normal_(0, a.b_std)
    save_adapter(layers, a.out, a.base, a.family, a.targets, a.r, a.alpha, a.rslora)
    prompts = json.loads(a.prompts)
    with torch.no_grad():
        reference = {"prompts": prompts, "logits": [logits(model, q) for q in prompts]}
    with open(os.path.join(a.out, "reference.json"), "w") as f:
        json.dump(reference, f)


if __name__ == "__main__":
    main()
