"""
PyTorch speed reference for one PPO iteration, with the semantics of RLHF Studio's
PPO trainer (src/train/ppo.ts, itself TRL's PPOTrainer):

  rollout  the policy samples a response to each prompt with a KV cache
           (temperature, top_k 0, top_p 1), stopping at EOS or --response-length;
  score    one no-grad pass each of policy, frozen reference and value model over
           prompt + response gives logprobs, ref_logprobs and values; the reward
           model (same shape, scalar head) scores the last real token; k1 KL;
  (adv)    rewards = -kl_coef * kl per token + score on the last token, GAE,
           whitened advantages (host arithmetic, reported as advantages_s);
  update   num_ppo_epochs x num_mini_batches steps of pg_loss + vf_coef * vf_loss
           (clipped policy and value losses) with one AdamW over policy + value,
           gradient clipping, and the same statistics (entropy, clip fractions,
           approx KL) computed per step.

The models are random GPT-2s (gpt2_torch.py); the value model starts as a copy of
the reward model, as when a reward model is given. With random weights EOS is
rare, so responses run to --response-length and the shapes match the TS bench.

    python3 bench/reference/ppo_torch.py [--batch 16 --prompt-len 16 --response-length 53
        --layers 2 --d 128 --heads 4 --vocab 50257 --ctx 128 --threads N
        --warmup 1 --iters 3 --prompts ids.json --malloc tuned|default]

--prompts is a JSON list of token-id lists (the prompts the TS bench used); without
it, random prompts of --prompt-len tokens. Prints one JSON line: medians over the
timed iterations after warm-up (and *_min_s, the fastest).
"""

import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the sibling modules, however this file is run
from torch_threads import cores  # noqa: E402  sets the thread pools, so it comes before torch


def tune_malloc(argv):
    """--malloc tuned (the default): glibc serves every block from its heap and keeps freed memory.
    By default glibc mmaps each block over 32 MB afresh and unmaps it on free, so PyTorch's
    [B, T, vocab] temporaries (tens to hundreds of MB) page-fault in anew on every use; on 2 cores
    that roughly doubled this script's score and update phases, most of it system time. This is
    what jemalloc or tcmalloc, common with PyTorch on CPU, also avoid."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--malloc", choices=["tuned", "default"], default="tuned")
    if p.parse_known_args(argv)[0].malloc == "default":
        return "default"
    import ctypes
    libc = ctypes.CDLL("libc.so.6")
    M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
    ok = libc.mallopt(M_MMAP_MAX, 0) == 1 and libc.mallopt(M_TRIM_THRESHOLD, ctypes.c_int(2**31 - 1)) == 1
    return "tuned" if ok else "default (mallopt failed)"


MALLOC = tune_malloc(sys.argv[1:])

import copy  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from gpt2_torch import GPT2, GPT2Config, init_weights, positions_from_mask  # noqa: E402
from bench_torch import blas_in_use  # noqa: E402
import device  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=cores())
    p.add_argument("--malloc", choices=["tuned", "default"], default="tuned", help="see tune_malloc")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (torch >= 2.0 off the CPU)")
    p.add_argument("--warmup", type=int, default=1, help="untimed iterations")
    p.add_argument("--iters", type=int, default=3, help="timed iterations")
    p.add_argument("--batch", type=int, default=16, help="per_device_train_batch_size")
    p.add_argument("--prompt-len", type=int, default=16)
    p.add_argument("--prompts", help="JSON list of prompts as token-id lists")
    p.add_argument("--response-length", type=int, default=53)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--d", type=int, default=128)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--vocab", type=int, default=50257)
    p.add_argument("--ctx", type=int, default=128, help="n_positions")
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--num-ppo-epochs", type=int, default=4)
    p.add_argument("--num-mini-batches", type=int, default=1)
    p.add_argument("--learning-rate", type=float, default=3e-6)
    p.add_argument("--kl-coef", type=float, default=0.05)
    p.add_argument("--cliprange", type=float, default=0.2)
    p.add_argument("--cliprange-value", type=float, default=0.2)
    p.add_argument("--vf-coef", type=float, default=0.1)
    p.add_argument("--gamma", type=float, default=1.0)
    p.add_argument("--lam", type=float, default=0.95)
    p.add_argument("--max-grad-norm", type=float, default=1.0)
    return p.parse_args()


# -----------------------------------------------------------------------------
# helpers


def masked_mean(x, mask):
    return (x * mask).sum() / mask.sum()


def masked_whiten(x, mask):
    """(x - mean) / sqrt(var + 1e-8) over the masked entries, unbiased variance."""
    n = mask.sum()
    mean = masked_mean(x, mask)
    var = (((x - mean) ** 2) * mask).sum() / (n - 1).clamp(min=1)
    return (x - mean) * torch.rsqrt(var + 1e-8) * mask


def token_logprobs(logits, targets):
    return torch.gather(F.log_softmax(logits, -1), 2, targets.unsqueeze(-1)).squeeze(-1)


def values_of(model, idx, mask, pos):
    h, _ = model.transformer(idx, mask, pos)
    return model.score(h).squeeze(-1)


@torch.no_grad()
def sample(policy, prompts, prompt_mask, n_new, temperature, eos_id, pad_id, gen):
    """KV-cache sampling: [B, R] response ids (pad after EOS) and [B] response lengths."""
    B = prompts.size(0)
    mask, pos = prompt_mask, positions_from_mask(prompt_mask)
    h, past = policy.transformer(prompts, mask, pos)
    logits = policy.head(h[:, -1])
    finished = torch.zeros(B, dtype=torch.bool)
    lengths = torch.zeros(B, dtype=torch.long)
    out = []
    ones = torch.ones(B, 1, dtype=mask.dtype)
    for step in range(n_new):
        probs = F.softmax(logits / temperature, -1)  # top_k 0, top_p 1: no filtering
        nxt = torch.multinomial(probs, 1, generator=gen).squeeze(1)
        nxt = torch.where(finished, torch.full_like(nxt, pad_id), nxt)
        out.append(nxt)
        lengths += (~finished).long()
        finished |= nxt == eos_id
        if step + 1 >= n_new or bool(finished.all()):
            break
        mask = torch.cat([mask, ones], 1)
        pos = pos[:, -1:] + 1
        h, past = policy.transformer(nxt[:, None], mask, pos, past)
        logits = policy.head(h[:, -1])
    return torch.stack(out, 1), lengths


# -----------------------------------------------------------------------------
# one iteration


class PPO:

    def __init__(self, a, prompts):
        self.a = a
        cfg = GPT2Config(vocab_size=a.vocab, n_positions=a.ctx, n_embd=a.d, n_layer=a.layers, n_head=a.heads)
        self.policy = GPT2(cfg)
        init_weights(self.policy, seed=a.seed)
        self.ref = copy.deepcopy(self.policy).eval().requires_grad_(False)
        self.reward = GPT2(cfg, n_score=1)
        init_weights(self.reward, seed=a.seed + 1)
        self.reward.eval().requires_grad_(False)
        self.value = copy.deepcopy(self.reward).requires_grad_(True)
        # the value model never uses the LM head, but its wte (the embedding) trains
        self.params = list(self.policy.parameters()) + list(self.value.parameters())
        self.opt = torch.optim.AdamW(self.params, lr=a.learning_rate, weight_decay=0.0)
        self.prompts = prompts
        self.eos_id = self.pad_id = a.vocab - 1
        self.gen = device.generator(a.seed)
        self.updates = 0
        self.total_updates = (a.warmup + a.iters) * a.num_ppo_epochs * a.num_mini_batches

    def batch(self):
        """A batch of prompts, left-padded: ids [B, P] and mask [B, P]."""
        pick = torch.randperm(len(self.prompts), generator=self.gen)[: self.a.batch].tolist()
        rows = [self.prompts[i] for i in pick]
        P = max(len(r) for r in rows)
        ids = torch.full((len(rows), P), self.pad_id, dtype=torch.long)
        mask = torch.zeros(len(rows), P, dtype=torch.long)
        for b, r in enumerate(rows):
            ids[b, P - len(r):] = torch.tensor(r)
            mask[b, P - len(r):] = 1
        return ids, mask

    def iteration(self):
        a, times = self.a, {}
        prompts, prompt_mask = self.batch()
        P = prompts.size(1)

        # 1. rollout
        t0 = device.clock()
        responses, lengths = sample(self.policy, prompts, prompt_mask, a.response_length, a.temperature,
                                    self.eos_id, self.pad_id, self.gen)
        times["rollout_s"] = device.clock() - t0

        # 2. logprobs, ref_logprobs, values (one no-grad pass each), reward-model score, KL
        t0 = device.clock()
        R = responses.size(1)
        resp_mask = (torch.arange(R)[None] < lengths[:, None])
        qr = torch.cat([prompts, responses], 1)
        attn = torch.cat([prompt_mask, resp_mask.long()], 1)
        pos = positions_from_mask(attn)
        mask = resp_mask.float()
        with torch.no_grad():
            logits, _ = self.policy(qr, attn, pos)
            logprobs = token_logprobs(logits[:, P - 1:-1] / a.temperature, responses)
            del logits
            ref_logits, _ = self.ref(qr, attn, pos)
            ref_logprobs = token_logprobs(ref_logits[:, P - 1:-1] / a.temperature, responses)
            del ref_logits
            values = values_of(self.value, qr, attn, pos)[:, P - 1:-1]
            scores = values_of(self.reward, qr, attn, pos)[torch.arange(qr.size(0)), P - 1 + lengths]
            kl = (logprobs - ref_logprobs) * mask  # k1
        times["score_s"] = device.clock() - t0

        # 3. rewards, GAE, whitening
        t0 = device.clock()
        with torch.no_grad():
            logprobs, values = logprobs * mask, values * mask
            rewards = -a.kl_coef * kl
            rewards[torch.arange(qr.size(0)), lengths - 1] += scores
            advantages = torch.zeros_like(rewards)
            last = torch.zeros(qr.size(0))
            for t in reversed(range(R)):
                next_value = values[:, t + 1] if t + 1 < R else torch.zeros(qr.size(0))
                delta = rewards[:, t] + a.gamma * next_value - values[:, t]
                last = delta + a.gamma * a.lam * last
                advantages[:, t] = last * mask[:, t]
            returns = advantages + values
            advantages = masked_whiten(advantages, mask)
        times["advantages_s"] = device.clock() - t0

        # 4. updates
        t0 = device.clock()
        B = qr.size(0)
        size = -(-B // a.num_mini_batches)
        stats = []
        for _ in range(a.num_ppo_epochs):
            order = torch.randperm(B, generator=self.gen)
            for k in range(a.num_mini_batches):
                mb = order[k * size:(k + 1) * size]
                if len(mb) == 0:
                    continue
                self.updates += 1
                for g in self.opt.param_groups:  # linear schedule, as the trainer's default
                    g["lr"] = a.learning_rate * (1 - (self.updates - 1) / self.total_updates)
                m = mask[mb]
                logits, _ = self.policy(qr[mb], attn[mb], pos[mb])
                logits = logits[:, P - 1:-1] / a.temperature
                new_logprobs = token_logprobs(logits, responses[mb])
                vpred = values_of(self.value, qr[mb], attn[mb], pos[mb])[:, P - 1:-1]
                old_values = values[mb]
                vclipped = old_values + (vpred - old_values).clamp(-a.cliprange_value, a.cliprange_value)
                vf1 = (vpred - returns[mb]) ** 2
                vf2 = (vclipped - returns[mb]) ** 2
                vf_loss = 0.5 * masked_mean(torch.max(vf1, vf2), m)
                logratio = new_logprobs - logprobs[mb]
                ratio = torch.exp(logratio)
                adv = advantages[mb]
                pg1 = -adv * ratio
                pg2 = -adv * ratio.clamp(1 - a.cliprange, 1 + a.cliprange)
                pg_loss = masked_mean(torch.max(pg1, pg2), m)
                loss = pg_loss + a.vf_coef * vf_loss
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(self.params, a.max_grad_norm)
                self.opt.step()
                with torch.no_grad():
                    entropy = torch.logsumexp(logits, -1) - (F.softmax(logits, -1) * logits).sum(-1)
                    stats.append(dict(
                        loss=loss.item(), grad_norm=grad_norm.item(), pg_loss=pg_loss.item(), vf_loss=vf_loss.item(),
                        pg_clipfrac=masked_mean((pg2 > pg1).float(), m).item(),
                        vf_clipfrac=masked_mean((vf2 > vf1).float(), m).item(),
                        approxkl=0.5 * masked_mean(logratio ** 2, m).item(),
                        ratio=masked_mean(ratio, m).item(), entropy=masked_mean(entropy, m).item()))
                del logits
        times["update_s"] = device.clock() - t0
        times["total_s"] = times["rollout_s"] + times["score_s"] + times["update_s"]
        times["iteration_s"] = times["total_s"] + times["advantages_s"]
        times["response_tokens"] = int(lengths.sum())
        times["score_mean"] = float(scores.mean())
        times["kl"] = float(kl.sum(1).mean())
        times["loss_last"] = stats[-1]["loss"]
        return times


def main():
    a = parse_args()
    device.use(a.device)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    if a.prompts:
        with open(a.prompts) as f:
            prompts = json.load(f)
        if any(max(p) >= a.vocab for p in prompts):
            raise SystemExit("--prompts: a token id is outside --vocab")
    else:
        g = device.generator(a.seed + 2)
        prompts = torch.randint(a.vocab - 1, (max(a.batch, 64), a.prompt_len), generator=g).tolist()
    if len(prompts) < a.batch:
        raise SystemExit(f"need at least --batch ({a.batch}) prompts, got {len(prompts)}")
    width = max(len(p) for p in prompts) + a.response_length
    if width > a.ctx:
        raise SystemExit(f"prompt + response ({width}) must fit --ctx ({a.ctx})")
    ppo = PPO(a, prompts)
    for _ in range(a.warmup):
        ppo.iteration()
    runs = [ppo.iteration() for _ in range(a.iters)]
    med = lambda k: round(statistics.median(r[k] for r in runs), 4)  # noqa: E731
    out = {"bench": "ppo-iteration"}
    out.update({k: med(k) for k in ("rollout_s", "score_s", "update_s", "total_s", "advantages_s", "iteration_s")})
    # the fastest iteration per phase: other load on a few cores only ever adds time
    out.update({k.replace("_s", "_min_s"): round(min(r[k] for r in runs), 4) for k in ("rollout_s", "score_s", "update_s", "total_s")})
    out.update(per_iteration=[{k: round(r[k], 4) for k in ("rollout_s", "score_s", "update_s", "total_s")} for r in runs],
               response_tokens=runs[-1]["response_tokens"], loss_last=runs[-1]["loss_last"],
               threads=torch.get_num_threads(), blas=blas_in_use(), torch=torch.__version__,
               omp_wait_policy=os.environ["OMP_WAIT_POLICY"], malloc=MALLOC, warmup=a.warmup, iters=a.iters,
               device=a.device, peak_device_mb=device.peak_mb(),
               config=dict(batch=a.batch, prompt_len=max(len(p) for p in prompts), response_length=a.response_length,
                           layers=a.layers, d=a.d, heads=a.heads, vocab=a.vocab, ctx=a.ctx,
                           temperature=a.temperature, top_k=0, top_p=1.0,
                           num_ppo_epochs=a.num_ppo_epochs, num_mini_batches=a.num_mini_batches,
                           kl_estimator="k1", kl_coef=a.kl_coef, gamma=a.gamma, lam=a.lam, vf_coef=a.vf_coef,
                           cliprange=a.cliprange, cliprange_value=a.cliprange_value, max_grad_norm=a.max_grad_norm))
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
