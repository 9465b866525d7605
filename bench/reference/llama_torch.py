"""
A plain PyTorch Llama-family decoder that computes what Hugging Face's
LlamaForCausalLM, Qwen2ForCausalLM and Qwen3ForCausalLM compute, written from
the papers and the transformers source, without the transformers library. It is
the independent reference for RLHF Studio's Llama-family models: the parity
oracle for their logits and greedy continuations, and the speed baseline in the
benches. It is never a runtime dependency of the extension.

A checkpoint is a directory with
    config.json        HF's LlamaConfig / Qwen2Config / Qwen3Config keys
    model.safetensors  model.embed_tokens.weight, model.layers.{i}.*, model.norm.weight,
                       and lm_head.weight unless the head is tied

Write the parity cases (a checkpoint and reference.json in a folder per case):
    python3 bench/reference/llama_torch.py cases --out DIR [--new-tokens 8]

reference.json: {"prompts": [[...]], "logits": [[[...]]] (each prompt alone, [T, V]),
                 "greedy": [[...]] (each prompt's greedy continuation, recomputed in full per token)}
"""

import argparse
import json
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt2_torch import read_safetensors, write_safetensors  # noqa: E402

# -----------------------------------------------------------------------------
# config

FAMILIES = {
    # model_type: (class prefix, q/k/v biases always, q/k norm)
    "llama": ("Llama", False, False),
    "qwen2": ("Qwen2", True, False),
    "qwen3": ("Qwen3", False, True),
}


class Config:
    """The HF config.json keys the forward needs, with HF's fallbacks."""

    def __init__(self, d):
        self.model_type = d["model_type"]
        _, qkv_bias, self.qk_norm = FAMILIES[self.model_type]
        self.vocab_size = d["vocab_size"]
        self.hidden_size = d["hidden_size"]
        self.intermediate_size = d["intermediate_size"]
        self.n_layer = d["num_hidden_layers"]
        self.n_head = d["num_attention_heads"]
        self.n_kv_head = d.get("num_key_value_heads") or self.n_head
        self.head_dim = d.get("head_dim") or self.hidden_size // self.n_head
        self.eps = d["rms_norm_eps"]
        rope = d.get("rope_parameters") or d.get("rope_scaling") or {}
        self.rope_theta = rope.get("rope_theta", d.get("rope_theta", 10000.0))
        self.rope = rope if rope.get("rope_type", rope.get("type", "default")) == "llama3" else None
        self.attn_bias = d.get("attention_bias", False) if self.model_type != "qwen2" else False
        self.qkv_bias = qkv_bias or self.attn_bias
        self.mlp_bias = d.get("mlp_bias", False) if self.model_type == "llama" else False
        self.tied = d.get("tie_word_embeddings", False)


# -----------------------------------------------------------------------------
# model


class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


def inv_frequencies(cfg):
    """1 / theta^(2i/d), and for llama3 scaling the smooth stretch of the low frequencies."""
    d = cfg.head_dim
    inv = 1.0 / (cfg.rope_theta ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d))
    if cfg.rope is None:
        return inv
    r = cfg.rope
    factor, lo, hi, old = r["factor"], r["low_freq_factor"], r["high_freq_factor"], r["original_max_position_embeddings"]
    wavelen = 2 * math.pi / inv
    scaled = torch.where(wavelen > old / lo, inv / factor, inv)
    smooth = (old / wavelen - lo) / (hi - lo)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = (wavelen >= old / hi) & (wavelen <= old / lo)
    return torch.where(medium, smoothed, scaled)


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def rotary(inv_freq, positions):
    """cos, sin [B, 1, T, d] for position ids [B, T]."""
    freqs = positions[:, :, None].float() * inv_freq[None, None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos()[:, None], emb.sin()[:, None]


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        d, hd = cfg.hidden_size, cfg.head_dim
        self.q_proj = nn.Linear(d, cfg.n_head * hd, bias=cfg.qkv_bias)
        self.k_proj = nn.Linear(d, cfg.n_kv_head * hd, bias=cfg.qkv_bias)
        self.v_proj = nn.Linear(d, cfg.n_kv_head * hd, bias=cfg.qkv_bias)
        self.o_proj = nn.Linear(cfg.n_head * hd, d, bias=cfg.attn_bias)
        if cfg.qk_norm:
            self.q_norm = RMSNorm(hd, cfg.eps)
            self.k_norm = RMSNorm(hd, cfg.eps)

    def forward(self, x, cos, sin, allowed, past=None):
        """Output and this layer's keys and values (after `past`'s, when given) for a KV cache."""
        c = self.cfg
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, c.n_head, c.head_dim)
        k = self.k_proj(x).view(B, T, c.n_kv_head, c.head_dim)
        v = self.v_proj(x).view(B, T, c.n_kv_head, c.head_dim).transpose(1, 2)
        if c.qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        q, k = q.transpose(1, 2), k.transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        if past is not None:
            k, v = torch.cat([past[0], k], 2), torch.cat([past[1], v], 2)
        groups = c.n_head // c.n_kv_head
        keys, values = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
        att = (q @ keys.transpose(-2, -1)) / math.sqrt(c.head_dim)
        att = att.masked_fill(~allowed, float("-inf")).softmax(-1)
        y = (att @ values).transpose(1, 2).reshape(B, T, c.n_head * c.head_dim)
        return self.o_proj(y), (k, v)


class MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, ff, b = cfg.hidden_size, cfg.intermediate_size, cfg.mlp_bias
        self.gate_proj = nn.Linear(d, ff, bias=b)
        self.up_proj = nn.Linear(d, ff, bias=b)
        self.down_proj = nn.Linear(ff, d, bias=b)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.self_attn = Attention(cfg)
        self.mlp = MLP(cfg)
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.eps)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.eps)

    def forward(self, x, cos, sin, allowed, past=None):
        a, kv = self.self_attn(self.input_layernorm(x), cos, sin, allowed, past)
        x = x + a
        return x + self.mlp(self.post_attention_layernorm(x)), kv


class Trunk(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(Layer(cfg) for _ in range(cfg.n_layer))
        self.norm = RMSNorm(cfg.hidden_size, cfg.eps)


class LlamaLM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.model = Trunk(cfg)
        self.lm_head = None if cfg.tied else nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        self.register_buffer("inv_freq", inv_frequencies(cfg), persistent=False)

    def forward(self, idx, past=None):
        """Logits [B, T, V] of unpadded rows of token ids that follow the P cached positions of `past`
        (a (key, value) pair per layer, or None), and every layer's keys and values."""
        P, T = (0 if past is None else past[0][0].size(2)), idx.size(1)
        positions = torch.arange(P, P + T)[None].expand(idx.size(0), T)
        cos, sin = rotary(self.inv_freq, positions)
        allowed = torch.ones(T, P + T, dtype=torch.bool).tril(P)
        x = self.model.embed_tokens(idx)
        present = []
        for i, layer in enumerate(self.model.layers):
            x, kv = layer(x, cos, sin, allowed, None if past is None else past[i])
            present.append(kv)
        x = self.model.norm(x)
        w = self.model.embed_tokens.weight if self.lm_head is None else self.lm_head.weight
        return x @ w.t(), present


@torch.no_grad()
def greedy(model, prompt, n_new):
    """n_new greedy tokens after `prompt`, the whole sequence recomputed for each."""
    ids = torch.tensor([prompt])
    for _ in range(n_new):
        ids = torch.cat([ids, model(ids)[0][:, -1].argmax(-1, keepdim=True)], 1)
    return ids[0, len(prompt):].tolist()


@torch.no_grad()
def generate_greedy(model, idx, n_new):
    """Greedy decoding of n_new tokens after equal-length prompts [B, T] with a KV cache; returns the new tokens."""
    logits, past = model(idx)
    out = [logits[:, -1].argmax(-1, keepdim=True)]
    for _ in range(n_new - 1):
        logits, past = model(out[-1], past)
        out.append(logits[:, -1].argmax(-1, keepdim=True))
    return torch.cat(out, 1)


# -----------------------------------------------------------------------------
# checkpoints


def init_weights(model, seed, std):
    """Matrices N(0, std); norms 1 + N(0, 0.2) and biases N(0, 0.2), so parity exercises them."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g, device="cpu")  # the same weights on any device
            p.copy_(noise * std if p.dim() == 2 else (name.endswith("norm.weight") + 0.2 * noise))


def save_checkpoint(model, hf_config, path):
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(hf_config, f, indent=2)
    write_safetensors(os.path.join(path, "model.safetensors"), {k: v.float() for k, v in model.state_dict().items()})


def load_checkpoint(path):
    with open(os.path.join(path, "config.json")) as f:
        model = LlamaLM(Config(json.load(f)))
    tensors = {k: v for k, v in read_safetensors(os.path.join(path, "model.safetensors")).items()
               if not k.endswith("rotary_emb.inv_freq")}
    model.load_state_dict(tensors, strict=True)
    return model.eval()


def hf_config(model_type, untied=False, **extra):
    """A tiny config.json of `model_type`: GQA (4 query heads over 2 KV heads)."""
    cfg = dict(
        model_type=model_type, architectures=[FAMILIES[model_type][0] + "ForCausalLM"], vocab_size=101,
        hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=64, rms_norm_eps=1e-6, rope_theta=10000.0, tie_word_embeddings=not untied,
        hidden_act="silu", bos_token_id=1, eos_token_id=2,
    )
    cfg.update(extra)
    return cfg


CASES = {
    "llama-gqa-tied": hf_config("llama"),
    "qwen2-bias": hf_config("qwen2", untied=True, rope_theta=1000000.0, use_sliding_window=False),
    # head_dim 24, not hidden_size / heads = 16; rotary settings in transformers 5's form
    "qwen3-qknorm": dict(
        {k: v for k, v in hf_config("qwen3", head_dim=24).items() if k != "rope_theta"},
        rope_parameters={"rope_type": "default", "rope_theta": 50000.0}),
    # original context 32: some wavelengths kept, some stretched by 4, some in between; every bias
    "llama3-rope": hf_config("llama", untied=True, attention_bias=True, mlp_bias=True, rope_theta=500000.0, rope_scaling={
        "rope_type": "llama3", "factor": 4.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
        "original_max_position_embeddings": 32}),
}

PROMPTS = [[5, 17, 3, 88, 42, 9, 61, 30], [61, 2], [30, 31, 32, 33, 7]]


def write_cases(out, n_new, std):
    for seed, (name, config) in enumerate(CASES.items()):
        path = os.path.join(out, name)
        model = LlamaLM(Config(config))
        init_weights(model, seed, std)
        save_checkpoint(model, config, path)
        model = load_checkpoint(path)  # what the file holds is what is compared
        with torch.no_grad():
            logits = [model(torch.tensor([p]))[0][0].tolist() for p in PROMPTS]
        reference = {"prompts": PROMPTS, "logits": logits, "greedy": [greedy(model, p, n_new) for p in PROMPTS]}
        with open(os.path.join(path, "reference.json"), "w") as f:
            json.dump(reference, f)
        print(f"wrote {path}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["cases"])
    p.add_argument("--out", required=True, help="folder to write one checkpoint folder per case into")
    p.add_argument("--new-tokens", type=int, default=8)
    p.add_argument("--std", type=float, default=0.15, help="standard deviation of the weight matrices")
    args = p.parse_args()
    torch.manual_seed(0)
    write_cases(args.out, args.new_tokens, args.std)


if __name__ == "__main__":
    main()
