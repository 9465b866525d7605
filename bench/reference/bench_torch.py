"""
PyTorch speed reference for the RLHF Studio benches. Prints one JSON object
per line on stdout.

    python3 bench/reference/bench_torch.py --case mlp|block|gpt2-sft|gpt2-dpo|decode|llama-sft|llama-decode|matmul-peak|all
                                           [--threads N] [--warmup N] [--steps N] [config flags]

Every case runs --warmup untimed steps, then times --steps steps (or whole
generations for decode) and reports the median; ms_min is the fastest one.
GFLOP/s counts matmul FLOPs only (nominal: forward + backward = 3x forward).
"""

import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the sibling modules, however this file is run
from torch_threads import cores  # noqa: E402  sets the thread pools, so it comes before torch

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from gpt2_torch import GPT2, Block, GPT2Config, init_weights, generate_greedy  # noqa: E402
import device  # noqa: E402
import llama_torch  # noqa: E402
from dpo_torch import batch_loss_metrics, sequence_logps  # noqa: E402

CASES = ["mlp", "block", "gpt2-sft", "gpt2-dpo", "decode", "llama-sft", "llama-decode", "matmul-peak"]
# SmolLM2-135M's shape, 4 of its 30 layers
LLAMA = dict(d=576, heads=9, kv_heads=3, intermediate=1536, layers=4, vocab=49152, rope_theta=100000.0)

DEFAULTS = {
    "mlp": dict(batch=256, n_in=512, hidden=2048, n_out=512, warmup=3, steps=10),
    "block": dict(batch=8, ctx=128, d=256, heads=4, warmup=3, steps=10),
    "gpt2-sft": dict(batch=8, ctx=128, d=256, heads=4, layers=4, vocab=50257, warmup=2, steps=5),
    "gpt2-dpo": dict(batch=4, ctx=128, d=256, heads=4, layers=4, vocab=50257, prompt=64, warmup=2, steps=5),
    "decode": dict(batch=16, ctx=128, d=256, heads=4, layers=4, vocab=50257, prompt=16,
                   new_tokens=64, warmup=1, steps=3),
    "llama-sft": dict(batch=8, ctx=128, **LLAMA, warmup=2, steps=5),
    "llama-decode": dict(batch=16, ctx=128, **LLAMA, prompt=16, new_tokens=64, warmup=1, steps=3),
    "matmul-peak": dict(sizes="1024,2048,4096", warmup=2, steps=5),
}

# -----------------------------------------------------------------------------
# helpers


def time_it(fn, warmup, steps):
    """Median and min seconds of fn() over `steps` calls after `warmup` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        t0 = device.clock()
        fn()
        times.append(device.clock() - t0)
    return statistics.median(times), min(times)


def blas_in_use():
    """Name of the BLAS library mapped into this process (openblas, mkl, ...)."""
    with open("/proc/self/maps") as f:
        maps = f.read()
    for name in ("openblas", "mkl", "blis", "atlas"):
        if name in maps:
            return name
    return "reference" if "libblas" in maps else "unknown"


def report(bench, a, sec, sec_min, flops=None, tokens=None, **extra):
    out = {"bench": bench, "ms_per_step": round(sec * 1e3, 3), "ms_min": round(sec_min * 1e3, 3)}
    if tokens is not None:
        out["tokens_per_s"] = round(tokens / sec, 1)
    if flops is not None:
        out["gflops"] = round(flops / sec / 1e9, 2)
    out.update(extra)
    out.update(threads=torch.get_num_threads(), blas=blas_in_use(), torch=torch.__version__,
               omp_wait_policy=os.environ["OMP_WAIT_POLICY"], device=a.device, peak_device_mb=device.peak_mb(),
               warmup=a.warmup, steps=a.steps,
               config={k: getattr(a, k) for k in DEFAULTS[bench] if k not in ("warmup", "steps")})
    print(json.dumps(out), flush=True)


def train_step(opt, loss_fn):
    def step():
        loss = loss_fn()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def gpt2_model(a):
    cfg = GPT2Config(vocab_size=a.vocab, n_positions=a.ctx, n_embd=a.d, n_layer=a.layers, n_head=a.heads)
    model = GPT2(cfg)
    init_weights(model, seed=a.seed)
    return model


def llama_model(a):
    """A Llama (tied head) of the flags' size, from llama_torch."""
    cfg = llama_torch.Config(dict(
        model_type="llama", vocab_size=a.vocab, hidden_size=a.d, intermediate_size=a.intermediate,
        num_hidden_layers=a.layers, num_attention_heads=a.heads, num_key_value_heads=a.kv_heads,
        max_position_embeddings=a.ctx, rms_norm_eps=1e-5, rope_theta=a.rope_theta, tie_word_embeddings=True))
    model = llama_torch.LlamaLM(cfg)
    llama_torch.init_weights(model, a.seed, 0.02)
    return model


def llama_matmul_params(a):
    """Weights used in matmuls: per layer q, k, v, o and the three MLP projections; the tied LM head."""
    hd = a.d // a.heads
    return a.layers * (2 * a.d * a.heads * hd + 2 * a.d * a.kv_heads * hd + 3 * a.d * a.intermediate) + a.vocab * a.d


# -----------------------------------------------------------------------------
# cases


def bench_mlp(a):
    model = nn.Sequential(nn.Linear(a.n_in, a.hidden), nn.GELU(approximate="tanh"),
                          nn.Linear(a.hidden, a.n_out))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(a.batch, a.n_in)
    y = torch.randint(a.n_out, (a.batch,))
    step = train_step(opt, lambda: F.cross_entropy(model(x), y))
    sec, sec_min = time_it(step, a.warmup, a.steps)
    flops = 3 * 2 * a.batch * (a.n_in * a.hidden + a.hidden * a.n_out)
    report("mlp", a, sec, sec_min, flops=flops)


def bench_block(a):
    cfg = GPT2Config(n_positions=a.ctx, n_embd=a.d, n_layer=1, n_head=a.heads)
    block = Block(cfg)
    opt = torch.optim.AdamW(block.parameters(), lr=1e-3)
    x = torch.randn(a.batch, a.ctx, a.d)
    step = train_step(opt, lambda: block(x)[0].pow(2).mean())
    sec, sec_min = time_it(step, a.warmup, a.steps)
    # forward per token: 24 d^2 (qkv 6d^2, proj 2d^2, mlp 16d^2) + 4 T d (q k^T and att v)
    flops = 3 * a.batch * a.ctx * (24 * a.d ** 2 + 4 * a.ctx * a.d)
    report("block", a, sec, sec_min, flops=flops, tokens=a.batch * a.ctx)


def bench_gpt2_sft(a):
    model = gpt2_model(a).train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
    data = torch.randint(a.vocab, (a.batch, a.ctx + 1), generator=device.generator(a.seed))
    x, y = data[:, :-1], data[:, 1:]

    def loss_fn():
        logits, _ = model(x)
        return F.cross_entropy(logits.reshape(-1, a.vocab), y.reshape(-1))

    sec, sec_min = time_it(train_step(opt, loss_fn), a.warmup, a.steps)
    # FLOPs per step = tokens * (6 N + 12 L T d), where N = 12 L d^2 + V d counts the
    # weights used in matmuls (blocks + tied LM head; no biases, LayerNorms or wpe),
    # and 12 L T d is attention (q k^T and att v, 4 T d per token forward, x3 for training).
    tokens = a.batch * a.ctx
    n_matmul = 12 * a.layers * a.d ** 2 + a.vocab * a.d
    flops = tokens * (6 * n_matmul + 12 * a.layers * a.ctx * a.d)
    report("gpt2-sft", a, sec, sec_min, flops=flops, tokens=tokens, matmul_params=n_matmul)


def bench_gpt2_dpo(a):
    """One DPO step on --batch pairs (2 x batch rows of --ctx tokens, the first --prompt of them the
    prompt): the frozen reference's log-probs (no grad), the policy's forward, TRL's sigmoid loss and
    metrics, backward, gradient clipping to norm 1 and AdamW, as a step of TRL's DPOTrainer. With glibc's malloc tuned as ppo_torch.py tunes it (importing it does), so
    the [2P, T, vocab] temporaries are not page-faulted in afresh on every step."""
    from ppo_torch import MALLOC
    policy = gpt2_model(a).train()
    reference = gpt2_model(a).eval().requires_grad_(False)
    opt = torch.optim.AdamW(policy.parameters(), lr=3e-4)
    rows = 2 * a.batch
    data = torch.randint(a.vocab, (rows, a.ctx + 1), generator=device.generator(a.seed))
    x, y = data[:, :-1], data[:, 1:]
    mask = torch.zeros(rows, a.ctx, dtype=torch.bool)
    mask[:, a.prompt - 1:] = True

    def step():
        with torch.no_grad():
            ref_logps = sequence_logps(reference(x)[0], y, mask, False)
        logits, _ = policy(x)
        loss, _ = batch_loss_metrics(logits, y, mask, ref_logps[:a.batch], ref_logps[a.batch:], 0.1, "sigmoid")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)  # TRL's max_grad_norm, as ours
        opt.step()

    sec, sec_min = time_it(step, a.warmup, a.steps)
    report("gpt2-dpo", a, sec, sec_min, tokens=rows * a.ctx, malloc=MALLOC)


def bench_decode(a):
    if a.prompt + a.new_tokens > a.ctx:
        raise SystemExit(f"--prompt + --new-tokens must fit in --ctx ({a.ctx})")
    model = gpt2_model(a).eval()
    prompt = torch.randint(a.vocab, (a.batch, a.prompt), generator=device.generator(a.seed))
    # one timed step = a whole generation: prefill of the prompt + new_tokens cached steps
    run = lambda: generate_greedy(model, prompt, a.new_tokens, use_cache=True)  # noqa: E731
    sec, sec_min = time_it(run, a.warmup, a.steps)
    report("decode", a, sec, sec_min, tokens=a.batch * a.new_tokens,
           ms_per_token_step=round(sec / a.new_tokens * 1e3, 3))


def bench_llama_sft(a):
    model = llama_model(a).train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
    data = torch.randint(a.vocab, (a.batch, a.ctx + 1), generator=device.generator(a.seed))
    x, y = data[:, :-1], data[:, 1:]

    def loss_fn():
        logits, _ = model(x)
        return F.cross_entropy(logits.reshape(-1, a.vocab), y.reshape(-1))

    sec, sec_min = time_it(train_step(opt, loss_fn), a.warmup, a.steps)
    # as gpt2-sft: tokens * (6 N + 12 L T (heads * head_dim))
    tokens, n_matmul = a.batch * a.ctx, llama_matmul_params(a)
    flops = tokens * (6 * n_matmul + 12 * a.layers * a.ctx * a.d)
    report("llama-sft", a, sec, sec_min, flops=flops, tokens=tokens, matmul_params=n_matmul)


def bench_llama_decode(a):
    if a.prompt + a.new_tokens > a.ctx:
        raise SystemExit(f"--prompt + --new-tokens must fit in --ctx ({a.ctx})")
    model = llama_model(a).eval()
    prompt = torch.randint(a.vocab, (a.batch, a.prompt), generator=device.generator(a.seed))
    run = lambda: llama_torch.generate_greedy(model, prompt, a.new_tokens)  # noqa: E731
    sec, sec_min = time_it(run, a.warmup, a.steps)
    report("llama-decode", a, sec, sec_min, tokens=a.batch * a.new_tokens,
           ms_per_token_step=round(sec / a.new_tokens * 1e3, 3))


def bench_matmul_peak(a):
    by_size, best = {}, None
    for n in [int(s) for s in str(a.sizes).split(",")]:
        x, y, out = torch.randn(n, n), torch.randn(n, n), torch.empty(n, n)
        sec, sec_min = time_it(lambda: torch.mm(x, y, out=out), a.warmup, a.steps)
        by_size[n] = round(2 * n ** 3 / sec_min / 1e9, 2)
        if best is None or by_size[n] > best[0]:
            best = (by_size[n], n, sec, sec_min)
    gflops, n, sec, sec_min = best
    # gflops here is the best single run, the machine's peak, not the median
    report("matmul-peak", a, sec, sec_min, gflops=gflops, best_size=n, gflops_by_size=by_size)


BENCHES = {"mlp": bench_mlp, "block": bench_block, "gpt2-sft": bench_gpt2_sft, "gpt2-dpo": bench_gpt2_dpo,
           "decode": bench_decode,
           "llama-sft": bench_llama_sft, "llama-decode": bench_llama_decode, "matmul-peak": bench_matmul_peak}

# -----------------------------------------------------------------------------


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--case", required=True, choices=CASES + ["all"])
    p.add_argument("--threads", type=int, default=cores(), help="default: number of cores")
    p.add_argument("--warmup", type=int, help="untimed steps (default per case)")
    p.add_argument("--steps", type=int, help="timed steps (default per case)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (torch >= 2.0 off the CPU)")
    p.add_argument("--batch", type=int)
    p.add_argument("--n-in", type=int, help="mlp input width")
    p.add_argument("--hidden", type=int, help="mlp hidden width")
    p.add_argument("--n-out", type=int, help="mlp output width (classes)")
    p.add_argument("--ctx", type=int, help="sequence length T (and n_positions)")
    p.add_argument("--d", type=int, help="n_embd")
    p.add_argument("--heads", type=int)
    p.add_argument("--kv-heads", type=int, help="llama: key/value heads")
    p.add_argument("--intermediate", type=int, help="llama: MLP width")
    p.add_argument("--rope-theta", type=float, help="llama: rotary base")
    p.add_argument("--layers", type=int)
    p.add_argument("--vocab", type=int)
    p.add_argument("--prompt", type=int, help="decode prompt length")
    p.add_argument("--new-tokens", type=int, help="decode tokens to generate")
    p.add_argument("--sizes", help="matmul-peak: comma-separated n for n x n x n")
    return p.parse_args()


def with_defaults(args, case):
    a = argparse.Namespace(**vars(args))
    for k, v in DEFAULTS[case].items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    return a


def main():
    args = parse_args()
    device.use(args.device)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    for case in CASES if args.case == "all" else [args.case]:
        with torch.no_grad() if case in ("decode", "llama-decode", "matmul-peak") else torch.enable_grad():
            BENCHES[case](with_defaults(args, case))


if __name__ == "__main__":
    main()
