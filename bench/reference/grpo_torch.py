"""GRPO's and RLOO's advantage and loss math in PyTorch, written from TRL's GRPOTrainer and
RLOOTrainer (their _generate_and_score_completions and _compute_loss), as an oracle for
test/unit/grpo-math.test.ts; grpo_bench_torch.py times one GRPO iteration with it.

Reads one fixed rollout as JSON on stdin:
  {"num_generations": G, "rewards_per_func": [[...] per completion] (null = not applicable),
   "reward_weights": [...], "logprobs", "old_logprobs", "ref_logprobs": [[...] B x T],
   "mask": [[0/1] B x T], "epsilon": e, "epsilon_high": eh, "beta": b, "max_completion_length": L,
   "num_items_in_batch": N, "grad_accum": k}
and writes, in float64, GRPO's advantages for each scale_rewards, its loss and statistics for each
loss_type (one micro-batch of the whole rollout), and RLOO's advantages and loss.
"""

import json
import sys

import torch


def grpo_advantages(rewards, g, scale_rewards):
    grouped = rewards.view(-1, g)
    mean = grouped.mean(dim=1).repeat_interleave(g)
    if scale_rewards == "batch":
        std = rewards.std().expand_as(rewards)
    else:
        std = grouped.std(dim=1).repeat_interleave(g)
    advantages = rewards - mean
    if scale_rewards != "none":
        advantages = advantages / (std + 1e-4)
    zero_std = torch.isclose(std, torch.zeros_like(std))
    return advantages, std, zero_std


def grpo_per_token_loss(logps, old, ref, advantages, eps_low, eps_high, beta):
    """-min(ratio * A, clip(ratio) * A) per token, plus beta * k3 KL; with the ratio and the KL."""
    per_token_kl = torch.exp(ref - logps) - (ref - logps) - 1
    coef_1 = torch.exp(logps - old)
    coef_2 = torch.clamp(coef_1, 1 - eps_low, 1 + eps_high)
    a = advantages.unsqueeze(1)
    per_token_loss = -torch.min(coef_1 * a, coef_2 * a)
    if beta != 0.0:
        per_token_loss = per_token_loss + beta * per_token_kl
    return per_token_loss, coef_1, per_token_kl


def aggregate(per_token_loss, mask, loss_type, max_completion_length, num_items_in_batch, grad_accum):
    """One micro-batch's loss as TRL sums it, scaled so that averaging it over grad_accum
    micro-batches (as RLHF Studio's trainer does) gives TRL's accumulated gradient."""
    if loss_type == "grpo":
        return ((per_token_loss * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    if loss_type == "bnpo":
        return (per_token_loss * mask).sum() / mask.sum().clamp(min=1.0)
    if loss_type == "dr_grpo":
        return (per_token_loss * mask).sum() / (per_token_loss.size(0) * max_completion_length)
    # dapo: TRL divides each micro-batch's sum by the rollout's completion tokens and sums over
    # micro-batches (no division by grad_accum), hence the factor.
    return (per_token_loss * mask).sum() / num_items_in_batch * grad_accum


def grpo_loss(x, advantages, loss_type):
    mask = x["mask"]
    eps_low, eps_high = x["epsilon"], x["epsilon_high"]
    per_token_loss, coef_1, per_token_kl = grpo_per_token_loss(
        x["logprobs"], x["old_logprobs"], x["ref_logprobs"], advantages, eps_low, eps_high, x["beta"]
    )
    loss = aggregate(
        per_token_loss, mask, loss_type, x["max_completion_length"], x["num_items_in_batch"], x["grad_accum"]
    )
    count = mask.sum().clamp(min=1.0)

    def masked_mean(t):
        return (t * mask).sum() / count

    a = advantages.unsqueeze(1)
    low = ((coef_1 < 1 - eps_low) & (a < 0)).double()
    high = ((coef_1 > 1 + eps_high) & (a > 0)).double()
    return {
        "loss": loss.item(),
        "kl": masked_mean(per_token_kl).item(),
        "clip_ratio/low_mean": masked_mean(low).item(),
        "clip_ratio/high_mean": masked_mean(high).item(),
        "clip_ratio/region_mean": masked_mean(torch.clamp(low + high, max=1)).item(),
    }


def rloo(x, rewards, g, normalize):
    mask = x["mask"]
    kl = ((x["old_logprobs"] - x["ref_logprobs"]) * mask).sum(-1)
    rewards = rewards - x["beta"] * kl
    grouped = rewards.view(-1, g)
    baselines = ((grouped.sum(dim=1, keepdim=True) - grouped) / (g - 1)).view(-1)
    advantages = rewards - baselines
    if normalize:
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-4)
    logps = (x["logprobs"] * mask).sum(1)
    old_logps = (x["old_logprobs"] * mask).sum(1)
    coef_1 = torch.exp(logps - old_logps)
    coef_2 = torch.clamp(coef_1, 1 - x["epsilon"], 1 + x["epsilon_high"])
    loss = -torch.min(coef_1 * advantages, coef_2 * advantages)
    low = ((coef_1 < 1 - x["epsilon"]) & (advantages < 0)).double()
    high = ((coef_1 > 1 + x["epsilon_high"]) & (advantages > 0)).double()
    return {
        "advantages": advantages.tolist(),
        "stats": {
            "loss": loss.mean().item(),
            "clip_ratio/low_mean": low.mean().item(),
            "clip_ratio/high_mean": high.mean().item(),
            "clip_ratio/region_mean": torch.clamp(low + high, max=1).mean().item(),
        },
    }


def main():
    case = json.load(sys.stdin)
    t = lambda k: torch.tensor(case[k], dtype=torch.float64)
    x = {k: t(k) for k in ["logprobs", "old_logprobs", "ref_logprobs", "mask"]}
    x.update({k: case[k] for k in ["epsilon", "epsilon_high", "beta", "max_completion_length", "grad_accum"]})
    x["num_items_in_batch"] = case["num_items_in_batch"]
    g = case["num_generations"]
    per_func = torch.tensor(
        [[float("nan") if r is None else r for r in row] for row in case["rewards_per_func"]], dtype=torch.float64
    )
    weights = torch.tensor(case["reward_weights"], dtype=torch.float64)
    rewards = (per_func * weights.unsqueeze(0)).nansum(dim=1)
    out = {"rewards": rewards.tolist(), "grpo": {}, "rloo": {}}
    for scale in ["group", "batch", "none"]:
        advantages, std, zero_std = grpo_advantages(rewards, g, scale)
        out["grpo"][scale] = {
            "advantages": advantages.tolist(),
            "reward_std": std.mean().item(),
            "frac_reward_zero_std": zero_std.double().mean().item(),
            "losses": {lt: grpo_loss(x, advantages, lt) for lt in ["grpo", "bnpo", "dr_grpo", "dapo"]},
        }
    for normalize in [False, True]:
        out["rloo"][str(normalize).lower()] = rloo(x, rewards, g, normalize)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
