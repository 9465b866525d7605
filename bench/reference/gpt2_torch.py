"""
A plain PyTorch GPT-2 that computes what Hugging Face's GPT2LMHeadModel
computes. It is the independent reference for RLHF Studio: the parity oracle
for our GPT-2 logits and the speed baseline in the benches. It is never a
runtime dependency of the extension.

A checkpoint is a directory with
    config.json        GPT2Config keys (vocab_size, n_positions, n_embd, ...)
    model.safetensors  wte.weight, wpe.weight, h.{i}.*, ln_f.*, and optionally
                       lm_head.weight (untied head) and score.weight (value head);
                       names may carry a "transformer." prefix.

Write a randomly initialised checkpoint:
    python3 bench/reference/gpt2_torch.py init --out DIR [--n-layer 2 ...]
"""

import argparse
import json
import math
import os
import re
import struct
from dataclasses import dataclass, asdict

import torch
import torch.nn as nn
import torch.nn.functional as F

# -----------------------------------------------------------------------------
# config


@dataclass
class GPT2Config:
    vocab_size: int = 50257
    n_positions: int = 1024
    n_embd: int = 768
    n_layer: int = 12
    n_head: int = 12
    n_inner: int = None  # MLP width, 4 * n_embd when None
    layer_norm_epsilon: float = 1e-5
    activation_function: str = "gelu_new"
    tie_word_embeddings: bool = True

    @classmethod
    def from_dict(cls, d):
        check_supported(d)
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})

    def to_dict(self):
        d = asdict(self)
        d.update(model_type="gpt2", architectures=["GPT2LMHeadModel"], n_ctx=self.n_positions)
        return d


TANH_GELUS = ("gelu_new", "gelu_pytorch_tanh", "gelu_fast")


def check_supported(d):
    """Refuse configs whose math this reference does not implement."""
    if d.get("scale_attn_weights", True) is not True:
        raise ValueError("scale_attn_weights=false is not supported")
    if d.get("scale_attn_by_inverse_layer_idx", False):
        raise ValueError("scale_attn_by_inverse_layer_idx is not supported")
    if d.get("activation_function", "gelu_new") not in TANH_GELUS + ("gelu",):
        raise ValueError(f"activation {d['activation_function']!r} is not supported")


# -----------------------------------------------------------------------------
# safetensors: 8-byte little-endian header length, JSON header, raw data

ST_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16,
    "BF16": torch.bfloat16, "I64": torch.int64, "I32": torch.int32,
    "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool,
}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = bytearray(f.read())
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = ST_DTYPES[info["dtype"]]
        begin, end = info["data_offsets"]
        size = torch.empty((), dtype=dtype).element_size()
        if end == begin:
            t = torch.empty(info["shape"], dtype=dtype)
        else:
            t = torch.frombuffer(data, dtype=dtype, count=(end - begin) // size, offset=base + begin)
        tensors[name] = t.reshape(info["shape"]).clone()
    return tensors


def tensor_bytes(t):
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def write_safetensors(path, tensors, metadata=None):
    st_names = {v: k for k, v in ST_DTYPES.items()}
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name]
        b = tensor_bytes(t)
        header[name] = {"dtype": st_names[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    header["__metadata__"] = metadata or {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)  # keep the data 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


# -----------------------------------------------------------------------------
# model


class Conv1D(nn.Module):
    """GPT-2's linear layer: weight stored [in, out], y = x @ W + b."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out))
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x):
        y = torch.addmm(self.bias, x.reshape(-1, x.size(-1)), self.weight)
        return y.view(*x.shape[:-1], -1)


def attention_allowed(T, past_len, attention_mask=None):
    """Bool [B or 1, 1, T, past_len + T]: causal, and no padded keys."""
    causal = torch.ones(T, past_len + T, dtype=torch.bool).tril(past_len)
    allowed = causal[None, None]
    if attention_mask is not None:
        allowed = allowed & attention_mask.bool()[:, None, None, :]
    return allowed


class SelfAttention(nn.Module):

    def __init__(self, cfg):
        super().__init__()
        self.n_head = cfg.n_head
        self.c_attn = Conv1D(cfg.n_embd, 3 * cfg.n_embd)
        self.c_proj = Conv1D(cfg.n_embd, cfg.n_embd)

    def forward(self, x, allowed=None, past=None):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = [t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v)]
        if past is not None:
            k = torch.cat([past[0], k], dim=2)
            v = torch.cat([past[1], v], dim=2)
        if allowed is None:
            allowed = attention_allowed(T, k.size(2) - T)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(k.size(-1))
        # masked scores get the most negative finite value (as HF does), so a row
        # with every key masked (a padding query) stays finite instead of NaN
        att = att.masked_fill(~allowed, torch.finfo(att.dtype).min)
        att = F.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y), (k, v)


class MLP(nn.Module):

    def __init__(self, cfg):
        super().__init__()
        inner = cfg.n_inner or 4 * cfg.n_embd
        self.c_fc = Conv1D(cfg.n_embd, inner)
        self.c_proj = Conv1D(inner, cfg.n_embd)
        self.approximate = "tanh" if cfg.activation_function in TANH_GELUS else "none"

    def forward(self, x):
        # approximate="tanh" is gelu_new: 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3)))
        return self.c_proj(F.gelu(self.c_fc(x), approximate=self.approximate))


class Block(nn.Module):
    """Pre-LayerNorm transformer block."""

    def __init__(self, cfg):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon)
        self.attn = SelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon)
        self.mlp = MLP(cfg)

    def forward(self, x, allowed=None, past=None):
        a, present = self.attn(self.ln_1(x), allowed, past)
        x = x + a
        x = x + self.mlp(self.ln_2(x))
        return x, present


class GPT2(nn.Module):

    def __init__(self, cfg, untied_head=False, n_score=0):
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.n_positions, cfg.n_embd)
        self.h = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)])
        self.ln_f = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False) if untied_head else None
        self.score = nn.Linear(cfg.n_embd, n_score, bias=False) if n_score else None

    def transformer(self, idx, attention_mask=None, position_ids=None, past=None):
        """Final hidden states [B, T, d] and the new (key, value) cache per layer.

        attention_mask covers past + current tokens (1 = real, 0 = padding).
        position_ids default to past_len .. past_len + T - 1, as in HF's forward.
        """
        B, T = idx.shape
        past_len = 0 if past is None else past[0][0].size(2)
        if position_ids is None:
            position_ids = torch.arange(past_len, past_len + T).unsqueeze(0)
        x = self.wte(idx) + self.wpe(position_ids)
        allowed = attention_allowed(T, past_len, attention_mask)
        presents = []
        for i, block in enumerate(self.h):
            x, kv = block(x, allowed, None if past is None else past[i])
            presents.append(kv)
        return self.ln_f(x), presents

    def head(self, h):
        w = self.wte.weight if self.lm_head is None else self.lm_head.weight
        return F.linear(h, w)

    def forward(self, idx, attention_mask=None, position_ids=None, past=None):
        h, presents = self.transformer(idx, attention_mask, position_ids, past)
        return self.head(h), presents


def count_params(model):
    return sum(p.numel() for p in model.parameters())


# -----------------------------------------------------------------------------
# decoding


def positions_from_mask(mask):
    """Position ids that count only real tokens (left padding), as HF generate does."""
    return (mask.long().cumsum(-1) - 1).clamp(min=0)


@torch.no_grad()
def generate_greedy(model, idx, n_new, attention_mask=None, use_cache=True):
    """Greedy decoding of n_new tokens; returns prompt + new tokens."""
    mask = torch.ones_like(idx) if attention_mask is None else attention_mask.long()
    ones = torch.ones(idx.size(0), 1, dtype=mask.dtype)
    past, pos, x = None, positions_from_mask(mask), idx
    for _ in range(n_new):
        if use_cache:
            h, past = model.transformer(x, mask, pos, past)
        else:
            h, _ = model.transformer(idx, mask, positions_from_mask(mask))
        nxt = model.head(h[:, -1]).argmax(-1, keepdim=True)
        idx, mask, x = torch.cat([idx, nxt], 1), torch.cat([mask, ones], 1), nxt
        pos = pos[:, -1:] + 1
    return idx


# -----------------------------------------------------------------------------
# checkpoints


def init_weights(model, seed=0, std=0.02, perturb=0.0):
    """GPT-2 init: N(0, std) matrices, residual projections scaled by
    1/sqrt(2 n_layer), unit LayerNorms, zero biases. perturb > 0 adds N(0, perturb)
    noise to LayerNorms and biases, so a parity test also exercises them."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g, dtype=p.dtype, device="cpu")  # the same weights on any device
            if name.endswith("c_proj.weight"):
                p.copy_(noise * std / math.sqrt(2 * model.cfg.n_layer))
            elif p.dim() == 2:
                p.copy_(noise * std)
            elif re.search(r"ln_\w+\.weight$", name):
                p.copy_(1 + perturb * noise)
            else:
                p.copy_(perturb * noise)


def is_attn_buffer(name):
    return re.fullmatch(r"h\.\d+\.attn\.(bias|masked_bias)", name) is not None


def load_checkpoint(path, dtype=torch.float32):
    with open(os.path.join(path, "config.json")) as f:
        cfg = GPT2Config.from_dict(json.load(f))
    sd = {}
    for name, t in read_safetensors(os.path.join(path, "model.safetensors")).items():
        name = name.removeprefix("transformer.")
        if not is_attn_buffer(name):
            sd[name] = t.to(dtype)
    n_score = sd["score.weight"].size(0) if "score.weight" in sd else 0
    model = GPT2(cfg, untied_head="lm_head.weight" in sd, n_score=n_score).to(dtype)
    model.load_state_dict(sd, strict=True)  # raises on missing, extra or misshapen
    return model.eval()


def save_checkpoint(model, path, prefix=""):
    os.makedirs(path, exist_ok=True)
    cfg = model.cfg.to_dict()
    cfg["tie_word_embeddings"] = model.lm_head is None
    if model.score is not None:
        cfg["num_labels"] = model.score.out_features
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    heads = ("lm_head.", "score.")  # HF keeps the heads outside "transformer."
    tensors = {(k if k.startswith(heads) else prefix + k): v.float()
               for k, v in model.state_dict().items()}
    write_safetensors(os.path.join(path, "model.safetensors"), tensors)


def main():
    p = argparse.ArgumentParser(description="Write a randomly initialised GPT-2 checkpoint.")
    p.add_argument("command", choices=["init"])
    p.add_argument("--out", required=True, help="checkpoint directory to write")
    p.add_argument("--vocab-size", type=int, default=50257)
    p.add_argument("--n-positions", type=int, default=1024)
    p.add_argument("--n-embd", type=int, default=256)
    p.add_argument("--n-layer", type=int, default=4)
    p.add_argument("--n-head", type=int, default=4)
    p.add_argument("--layer-norm-epsilon", type=float, default=1e-5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--std", type=float, default=0.02)
    p.add_argument("--perturb", type=float, default=0.0,
                   help="noise std for LayerNorm params and biases (0 = GPT-2 init)")
    p.add_argument("--untied", action="store_true", help="write a separate lm_head.weight")
    p.add_argument("--score", type=int, default=0, help="add a score.weight head with this many outputs")
    p.add_argument("--prefix", default="", help='name prefix, e.g. "transformer."')
    args = p.parse_args()
    cfg = GPT2Config(vocab_size=args.vocab_size, n_positions=args.n_positions, n_embd=args.n_embd,
                     n_layer=args.n_layer, n_head=args.n_head,
                     layer_norm_epsilon=args.layer_norm_epsilon)
    model = GPT2(cfg, untied_head=args.untied, n_score=args.score)
    init_weights(model, seed=args.seed, std=args.std, perturb=args.perturb)
    save_checkpoint(model, args.out, prefix=args.prefix)
    print(f"wrote {args.out}: {count_params(model):,} parameters")


if __name__ == "__main__":
    main()
