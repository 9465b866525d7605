"""
PyTorch speed reference for one GRPO iteration, with the semantics of RLHF Studio's GRPO trainer
(src/train/group-rl.ts, itself TRL's GRPOTrainer) and the loss math of grpo_torch.py:

  rollout    num_generations completions of each prompt (the prompt repeated per completion, as
             TRL's generation batch), KV-cache sampling (temperature, top_k 0, top_p 1), stopping
             at EOS or --max-completion-length;
  reward     a reward function of the completion ids (the share of even token ids);
  reference  one no-grad pass of the frozen reference over prompt + completion (beta > 0);
  (adv)      group mean / std advantages (host arithmetic, reported as advantages_s);
  update     one optimizer step (num_iterations 1: the ratio is against the detached log-probs)
             of the token-level clipped loss + beta * k3 KL, loss_type dapo, AdamW with gradient
             clipping, with entropy and the clip ratios computed as the trainer does.

    python3 bench/reference/grpo_bench_torch.py [--prompts ids.json --num-generations 8
        --completions 32 --max-completion-length 48 --layers 2 --d 128 --heads 4 --vocab 50257
        --ctx 128 --threads N --warmup 1 --iters 3 --malloc tuned|default]

Prints one JSON line: medians over the timed iterations after warm-up (and *_min_s, the fastest).
"""

import argparse
import copy
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the sibling modules, however this file is run
from ppo_torch import MALLOC, sample, token_logprobs  # noqa: E402  sets threads and malloc before torch

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from bench_torch import blas_in_use  # noqa: E402
import device  # noqa: E402
from gpt2_torch import GPT2, GPT2Config, init_weights, positions_from_mask  # noqa: E402
from grpo_torch import aggregate, grpo_advantages, grpo_per_token_loss  # noqa: E402
from torch_threads import cores  # noqa: E402

PHASES = ("rollout_s", "reward_s", "reference_s", "update_s", "total_s")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=cores())
    p.add_argument("--malloc", choices=["tuned", "default"], default="tuned", help="see ppo_torch.tune_malloc")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (torch >= 2.0 off the CPU)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--prompts", required=True, help="JSON list of prompts as token-id lists")
    p.add_argument("--completions", type=int, default=32, help="per_device_train_batch_size")
    p.add_argument("--num-generations", type=int, default=8)
    p.add_argument("--max-completion-length", type=int, default=48)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--d", type=int, default=128)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--vocab", type=int, default=50257)
    p.add_argument("--ctx", type=int, default=128)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--learning-rate", type=float, default=1e-6)
    p.add_argument("--beta", type=float, default=0.04)
    p.add_argument("--epsilon", type=float, default=0.2)
    return p.parse_args()


class GRPO:
    def __init__(self, a, prompts):
        self.a = a
        cfg = GPT2Config(vocab_size=a.vocab, n_positions=a.ctx, n_embd=a.d, n_layer=a.layers, n_head=a.heads)
        self.policy = GPT2(cfg)
        init_weights(self.policy, seed=a.seed)
        self.ref = copy.deepcopy(self.policy).eval().requires_grad_(False)
        self.opt = torch.optim.AdamW(self.policy.parameters(), lr=a.learning_rate, weight_decay=0.0)
        self.prompts = prompts
        self.eos_id = self.pad_id = a.vocab - 1
        self.gen = device.generator(a.seed)

    def batch(self):
        """completions / num_generations prompts, each repeated num_generations times, left-padded."""
        n = self.a.completions // self.a.num_generations
        pick = torch.randperm(len(self.prompts), generator=self.gen)[:n].tolist()
        rows = [self.prompts[i] for i in pick for _ in range(self.a.num_generations)]
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

        t0 = device.clock()
        completions, lengths = sample(self.policy, prompts, prompt_mask, a.max_completion_length, a.temperature,
                                      self.eos_id, self.pad_id, self.gen)
        times["rollout_s"] = device.clock() - t0

        t0 = device.clock()
        rewards = torch.tensor([sum(1 for t in ids[:n] if t % 2 == 0) / max(int(n), 1)
                                for ids, n in zip(completions.tolist(), lengths.tolist())], dtype=torch.float64)
        times["reward_s"] = device.clock() - t0

        t0 = device.clock()
        R = completions.size(1)
        mask = (torch.arange(R)[None] < lengths[:, None]).float()
        qc = torch.cat([prompts, completions], 1)
        attn = torch.cat([prompt_mask, mask.long()], 1)
        pos = positions_from_mask(attn)
        with torch.no_grad():
            ref_logits, _ = self.ref(qc, attn, pos)
            ref_logprobs = token_logprobs(ref_logits[:, P - 1:-1] / a.temperature, completions)
            del ref_logits
        times["reference_s"] = device.clock() - t0

        t0 = device.clock()
        advantages, _, _ = grpo_advantages(rewards, a.num_generations, "group")
        advantages = advantages.float()
        times["advantages_s"] = device.clock() - t0

        t0 = device.clock()
        logits, _ = self.policy(qc, attn, pos)
        logits = logits[:, P - 1:-1] / a.temperature
        logps = token_logprobs(logits, completions)
        per_token_loss, coef_1, per_token_kl = grpo_per_token_loss(
            logps, logps.detach(), ref_logprobs, advantages, a.epsilon, a.epsilon, a.beta)
        loss = aggregate(per_token_loss, mask, "dapo", a.max_completion_length, mask.sum(), 1)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.policy.parameters(), 1.0)
        self.opt.step()
        with torch.no_grad():
            count = mask.sum().clamp(min=1)
            entropy = ((torch.logsumexp(logits, -1) - (F.softmax(logits, -1) * logits).sum(-1)) * mask).sum() / count
            adv = advantages.unsqueeze(1)
            low = (((coef_1 < 1 - a.epsilon) & (adv < 0)).float() * mask).sum() / count
            high = (((coef_1 > 1 + a.epsilon) & (adv > 0)).float() * mask).sum() / count
            kl = (per_token_kl * mask).sum() / count
        stats = dict(loss=loss.item(), grad_norm=grad_norm.item(), entropy=entropy.item(), kl=kl.item(),
                     clip_low=low.item(), clip_high=high.item())
        del logits
        times["update_s"] = device.clock() - t0
        times["total_s"] = sum(times[k] for k in PHASES[:-1])
        times["completion_tokens"] = int(lengths.sum())
        times["reward"] = float(rewards.mean())
        times.update(stats)
        return times


def main():
    a = parse_args()
    device.use(a.device)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    with open(a.prompts) as f:
        prompts = json.load(f)
    if a.completions % a.num_generations:
        raise SystemExit("--num-generations must divide --completions")
    if max(len(p) for p in prompts) + a.max_completion_length > a.ctx:
        raise SystemExit("prompt + completion must fit --ctx")
    grpo = GRPO(a, prompts)
    for _ in range(a.warmup):
        grpo.iteration()
    runs = [grpo.iteration() for _ in range(a.iters)]
    out = {"bench": "grpo-iteration"}
    out.update({k: round(statistics.median(r[k] for r in runs), 4) for k in PHASES + ("advantages_s",)})
    out.update({k.replace("_s", "_min_s"): round(min(r[k] for r in runs), 4) for k in PHASES})
    out.update(per_iteration=[{k: round(r[k], 4) for k in PHASES} for r in runs],
               completion_tokens=runs[-1]["completion_tokens"], loss_last=runs[-1]["loss"],
               threads=torch.get_num_threads(), blas=blas_in_use(), torch=torch.__version__, malloc=MALLOC,
               warmup=a.warmup, iters=a.iters, device=a.device, peak_device_mb=device.peak_mb())
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
