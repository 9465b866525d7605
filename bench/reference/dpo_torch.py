"""
TRL's DPO loss and statistics in PyTorch, written from TRL's DPOTrainer (concatenated_forward,
dpo_loss, get_batch_loss_metrics) without the trl library: the oracle for src/train/dpo-loss.ts,
and the loss of bench_torch.py's gpt2-dpo case.

    python3 bench/reference/dpo_torch.py --input case.json --output out.json

case.json holds one batch of P pairs as 2P rows, the chosen rows first:
    logits [2P, T, V]     the policy's logits; position t predicts targets[t]
    targets [2P, T]       the next token at each position
    mask [2P, T]          1 where targets[t] is a completion token
    ref_chosen_logps [P], ref_rejected_logps [P]
    beta, loss_type ("sigmoid" | "ipo" | "hinge" | "robust"), label_smoothing, rpo_alpha (or null)
out.json: {"loss": ..., "rewards/chosen": ..., ...} with TRL's metric names, computed in float64.
"""

import argparse
import json

import torch
import torch.nn.functional as F


def sequence_logps(logits, targets, mask, average):
    """TRL's concatenated_forward: the completion tokens' log-probs summed per row (IPO: averaged)."""
    per_token = torch.gather(logits.log_softmax(-1), 2, targets.unsqueeze(2)).squeeze(2)
    per_token = torch.where(mask, per_token, torch.zeros_like(per_token))
    logps = per_token.sum(-1)
    return logps / mask.sum(-1) if average else logps


def dpo_loss(chosen_logps, rejected_logps, ref_chosen_logps, ref_rejected_logps, beta, loss_type, label_smoothing):
    """TRL's dpo_loss: each pair's loss, and the chosen and rejected implicit rewards."""
    logits = (chosen_logps - rejected_logps) - (ref_chosen_logps - ref_rejected_logps)
    if loss_type == "sigmoid":
        losses = -F.logsigmoid(beta * logits) * (1 - label_smoothing) - F.logsigmoid(-beta * logits) * label_smoothing
    elif loss_type == "robust":
        losses = (-F.logsigmoid(beta * logits) * (1 - label_smoothing)
                  + F.logsigmoid(-beta * logits) * label_smoothing) / (1 - 2 * label_smoothing)
    elif loss_type == "hinge":
        losses = torch.relu(1 - beta * logits)
    elif loss_type == "ipo":
        losses = (logits - 1 / (2 * beta)) ** 2
    else:
        raise ValueError(f"unknown loss_type {loss_type}")
    chosen_rewards = beta * (chosen_logps - ref_chosen_logps).detach()
    rejected_rewards = beta * (rejected_logps - ref_rejected_logps).detach()
    return losses, chosen_rewards, rejected_rewards


def batch_loss_metrics(logits, targets, mask, ref_chosen_logps, ref_rejected_logps, beta, loss_type,
                       label_smoothing=0.0, rpo_alpha=None):
    """TRL's get_batch_loss_metrics for 2P rows (chosen first): the mean loss and the logged metrics."""
    p = logits.shape[0] // 2
    logps = sequence_logps(logits, targets, mask, loss_type == "ipo")
    chosen_logps, rejected_logps = logps[:p], logps[p:]
    losses, chosen_rewards, rejected_rewards = dpo_loss(
        chosen_logps, rejected_logps, ref_chosen_logps, ref_rejected_logps, beta, loss_type, label_smoothing)
    metrics = {
        "rewards/chosen": chosen_rewards.mean(),
        "rewards/rejected": rejected_rewards.mean(),
        "rewards/accuracies": (chosen_rewards > rejected_rewards).to(logits.dtype).mean(),
        "rewards/margins": (chosen_rewards - rejected_rewards).mean(),
        "logps/chosen": chosen_logps.detach().mean(),
        "logps/rejected": rejected_logps.detach().mean(),
        "logits/chosen": logits[:p][mask[:p]].detach().mean(),
        "logits/rejected": logits[p:][mask[p:]].detach().mean(),
    }
    if rpo_alpha is not None:
        labels = torch.where(mask[:p], targets[:p], torch.full_like(targets[:p], -100))
        nll = F.cross_entropy(logits[:p].flatten(0, 1), labels.flatten(), ignore_index=-100)
        losses = losses + rpo_alpha * nll
        metrics["nll_loss"] = nll.detach()
    return losses.mean(), metrics


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", required=True)
    ap.add_argument("--output", required=True)
    a = ap.parse_args()
    with open(a.input) as f:
        case = json.load(f)
    tensor = lambda key: torch.tensor(case[key], dtype=torch.float64)  # noqa: E731
    loss, metrics = batch_loss_metrics(
        tensor("logits"), torch.tensor(case["targets"], dtype=torch.long), tensor("mask") > 0,
        tensor("ref_chosen_logps"), tensor("ref_rejected_logps"),
        case["beta"], case["loss_type"], case.get("label_smoothing", 0.0), case.get("rpo_alpha"))
    with open(a.output, "w") as f:
        json.dump({"loss": loss.item(), **{k: v.item() for k, v in metrics.items()}}, f)


if __name__ == "__main__":
    main()
