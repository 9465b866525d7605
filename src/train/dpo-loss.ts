/**
 * Direct preference optimization (Rafailov et al. 2023) as graph code, with the variants and the
 * statistics of TRL's DPOTrainer. A batch of P pairs is 2P rows, the chosen sequences first; the
 * reference's log-probs of them come in as inputs (computed once before training, ./dpo-reference.ts).
 */
import { logSigmoid, maskedMean, tokenLogprobs } from '../engine/nn';
import { cast, detach, greater, mean, relu, reshape, slice, sum } from '../engine/ops';
import { Tensor, input } from '../engine/tensor';
import { ModelConfig } from '../model/config';
import { lmHead, paramInputs, sequenceInputs, transformer } from '../model/decoder';
import { StageGraph } from './stage';

export type DpoLossType = 'sigmoid' | 'ipo' | 'hinge' | 'robust';

/** The loss settings of the "dpo" section (TRL's names). */
export interface DpoLossSettings {
  beta: number;
  loss_type: DpoLossType;
  label_smoothing: number;
  rpo_alpha?: number;
}

/** Log-probs of the chosen and the rejected responses, [P] each. */
export interface PairLogps {
  chosen: Tensor;
  rejected: Tensor;
}

/**
 * Each row's log-prob of its completion: the sum of its token log-probs [R, T] where `mask` is 1,
 * or for IPO their mean (TRL averages over the completion's length for IPO).
 */
export function sequenceLogps(tokenLogps: Tensor, mask: Tensor, average: boolean): Tensor {
  const total = sum(tokenLogps.mul(mask), -1);
  return average ? total.div(sum(mask, -1)) : total;
}

/** Rows [0, P) and [P, 2P) of x [2P, ...]: the chosen and the rejected half. */
export function halves(x: Tensor): [Tensor, Tensor] {
  const rest = x.shape.slice(1);
  const split = reshape(x, [2, -1, ...rest]);
  const half = (i: number) => reshape(slice(split, 0, i, i + 1), [-1, ...rest]);
  return [half(0), half(1)];
}

/**
 * The loss of each pair, from h = β·((π_c - ref_c) - (π_r - ref_r)), ε = label_smoothing:
 *   sigmoid  -(1 - ε) log σ(h) - ε log σ(-h)                (DPO; cDPO with ε > 0)
 *   robust   (-(1 - ε) log σ(h) + ε log σ(-h)) / (1 - 2ε)   (Chowdhury et al. 2024)
 *   hinge    max(0, 1 - h)                                   (SLiC)
 *   ipo      (h/β - 1/(2β))²                                 (Azar et al. 2023)
 */
export function dpoLosses(policy: PairLogps, reference: PairLogps, s: DpoLossSettings): Tensor {
  const logits = policy.chosen.sub(reference.chosen).sub(policy.rejected.sub(reference.rejected));
  const h = logits.mul(s.beta);
  const eps = s.label_smoothing;
  switch (s.loss_type) {
    case 'sigmoid':
      return logSigmoid(h)
        .mul(-(1 - eps))
        .sub(logSigmoid(h.neg()).mul(eps));
    case 'robust':
      return logSigmoid(h)
        .mul(-(1 - eps))
        .add(logSigmoid(h.neg()).mul(eps))
        .div(1 - 2 * eps);
    case 'hinge':
      return relu(h.neg().add(1));
    case 'ipo':
      return logits.sub(1 / (2 * s.beta)).pow(2);
  }
}

/**
 * The DPO objective of a batch from the policy's logits [2P, T, V], the targets [2P, T] and the
 * completion mask [2P, T], with TRL's metrics: the implicit rewards β·(π - ref) of chosen and
 * rejected, their margin and how often chosen's is higher, the policy's log-probs, and its mean
 * logit over completion tokens. With rpo_alpha, the chosen completions' NLL joins the loss.
 */
export function dpoObjective(
  logits: Tensor,
  targets: Tensor,
  mask: Tensor,
  reference: PairLogps,
  s: DpoLossSettings,
): { loss: Tensor; metrics: Record<string, Tensor> } {
  const tokenLogps = tokenLogprobs(logits, targets); // [2P, T]
  const [chosen, rejected] = halves(sequenceLogps(tokenLogps, mask, s.loss_type === 'ipo'));
  const losses = dpoLosses({ chosen, rejected }, reference, s);
  const chosenRewards = detach(chosen.sub(reference.chosen)).mul(s.beta);
  const rejectedRewards = detach(rejected.sub(reference.rejected)).mul(s.beta);
  const [chosenMask, rejectedMask] = halves(mask);
  const [chosenLogits, rejectedLogits] = halves(mean(logits, -1));
  const metrics: Record<string, Tensor> = {
    'rewards/chosen': mean(chosenRewards),
    'rewards/rejected': mean(rejectedRewards),
    'rewards/accuracies': mean(cast(greater(chosenRewards, rejectedRewards), chosenRewards.dtype)),
    'rewards/margins': mean(chosenRewards.sub(rejectedRewards)),
    'logps/chosen': mean(chosen),
    'logps/rejected': mean(rejected),
    'logits/chosen': maskedMean(chosenLogits, chosenMask),
    'logits/rejected': maskedMean(rejectedLogits, rejectedMask),
  };
  let loss = mean(losses);
  if (s.rpo_alpha !== undefined) {
    const [chosenTokenLogps] = halves(tokenLogps);
    metrics.nll_loss = maskedMean(chosenTokenLogps.neg(), chosenMask);
    loss = loss.add(metrics.nll_loss.mul(s.rpo_alpha));
  }
  return { loss, metrics };
}

/** A batch of P pairs has 2P rows. */
const ROWS = '2*P';

/** The completion mask and the reference's log-probs of a batch of pairs, as graph inputs. */
function pairInputs() {
  return {
    targets: input('targets', 'int32', [ROWS, 'T']),
    mask: input('loss_mask', 'float32', [ROWS, 'T']),
    reference: {
      chosen: input('ref_chosen_logps', 'float32', ['P']),
      rejected: input('ref_rejected_logps', 'float32', ['P']),
    },
  };
}

/** A language model's logits of a batch, [B, T, V]; `prefix` names its weights in the State. */
function modelLogits(cfg: ModelConfig, prefix = '') {
  const p = paramInputs(cfg, 'lm', prefix);
  return { params: p, logits: lmHead(p, cfg, transformer(p, cfg, sequenceInputs('T', ROWS)).hidden) };
}

/** DPO's training graph on batches of P pairs (2P rows, chosen first). */
export function dpoLossGraph(cfg: ModelConfig, s: DpoLossSettings): StageGraph {
  const { params, logits } = modelLogits(cfg);
  const { targets, mask, reference } = pairInputs();
  return { ...dpoObjective(logits, targets, mask, reference, s), params: Object.values(params) };
}

/** Each row's log-prob of its completion under the model whose weights are under `prefix` (the reference's). */
export function referenceLogpsGraph(cfg: ModelConfig, average: boolean, prefix: string) {
  const { logits } = modelLogits(cfg, prefix);
  const { targets, mask } = pairInputs();
  return { logps: sequenceLogps(tokenLogprobs(logits, targets), mask, average) };
}
