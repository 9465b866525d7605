/**
 * Direct preference optimization (Rafailov et al. 2023) as graph code, with the variants and the
 * statistics of TRL's DPOTrainer. A batch of P pairs is 2P rows, the chosen sequences first; only
 * the N positions that predict a response token are scored. The reference's log-probs of the rows
 * come in as inputs (computed once before training, ./dpo-reference.ts).
 */
import { LinearLogprobs } from '../engine/linear-logprobs';
import { logSigmoid } from '../engine/nn';
import { cast, detach, gather, greater, matmul, mean, relu, reshape, slice, sum } from '../engine/ops';
import { Tensor, input } from '../engine/tensor';
import { ModelConfig } from '../model/config';
import { lmHeadLogprobs, sequenceInputs, transformer } from '../model/decoder';
import { AdapterPlace, modelInputs, trainableInputs } from '../model/lora';
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
 * Sums over each row's scored tokens: x [N] (one value per scored token) → [2P], by `rows` [2P, N],
 * 1 where token n belongs to row r.
 */
export function rowSums(x: Tensor, rows: Tensor): Tensor {
  return reshape(matmul(rows, reshape(x, [-1, 1])), [-1]);
}

/**
 * Each row's log-prob of its completion from its tokens' log-probs [N]: their sum, or for IPO their
 * mean (TRL averages over the completion's length for IPO).
 */
export function sequenceLogps(tokenLogps: Tensor, rows: Tensor, average: boolean): Tensor {
  const total = rowSums(tokenLogps, rows);
  return average ? total.div(sum(rows, -1)) : total;
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

/** The policy's log-prob of each scored token and its mean logit there, [N] each. */
export type ScoredTokens = Pick<LinearLogprobs, 'logprobs' | 'meanLogit'>;

/**
 * The DPO objective of a batch from the policy's log-probs and mean logits at the N scored
 * positions (where a response token is predicted) and `rows` [2P, N] (which row each belongs to),
 * with TRL's metrics: the implicit rewards β·(π - ref) of chosen and rejected, their margin and how
 * often chosen's is higher, the policy's log-probs, and its mean logit over completion tokens. With
 * rpo_alpha, the chosen completions' NLL (per token) joins the loss.
 */
export function dpoObjective(
  scored: ScoredTokens,
  rows: Tensor,
  reference: PairLogps,
  s: DpoLossSettings,
): { loss: Tensor; metrics: Record<string, Tensor> } {
  const tokenLogps = scored.logprobs; // [N]
  const [chosen, rejected] = halves(sequenceLogps(tokenLogps, rows, s.loss_type === 'ipo'));
  const losses = dpoLosses({ chosen, rejected }, reference, s);
  const chosenRewards = detach(chosen.sub(reference.chosen)).mul(s.beta);
  const rejectedRewards = detach(rejected.sub(reference.rejected)).mul(s.beta);
  const [chosenTokens, rejectedTokens] = halves(sum(rows, -1)).map((n) => sum(n));
  const [chosenLogits, rejectedLogits] = halves(rowSums(scored.meanLogit, rows)).map((x) => sum(x));
  const metrics: Record<string, Tensor> = {
    'rewards/chosen': mean(chosenRewards),
    'rewards/rejected': mean(rejectedRewards),
    'rewards/accuracies': mean(cast(greater(chosenRewards, rejectedRewards), chosenRewards.dtype)),
    'rewards/margins': mean(chosenRewards.sub(rejectedRewards)),
    'logps/chosen': mean(chosen),
    'logps/rejected': mean(rejected),
    'logits/chosen': chosenLogits.div(chosenTokens),
    'logits/rejected': rejectedLogits.div(rejectedTokens),
  };
  let loss = mean(losses);
  if (s.rpo_alpha !== undefined) {
    const [chosenNll] = halves(rowSums(tokenLogps.neg(), rows));
    metrics.nll_loss = sum(chosenNll).div(chosenTokens);
    loss = loss.add(metrics.nll_loss.mul(s.rpo_alpha));
  }
  return { loss, metrics };
}

/** A batch of P pairs has 2P rows. */
const ROWS = '2*P';

/**
 * The scored positions of a batch, as graph inputs: b·T + t of each position whose target is a
 * response token, that target, and which row it is in; and the reference's log-probs.
 */
function pairInputs() {
  return {
    positions: input('scored_positions', 'int32', ['N']),
    targets: input('scored_targets', 'int32', ['N']),
    rows: input('scored_rows', 'float32', [ROWS, 'N']),
    reference: {
      chosen: input('ref_chosen_logps', 'float32', ['P']),
      rejected: input('ref_rejected_logps', 'float32', ['P']),
    },
  };
}

/**
 * A language model's log-probs (and mean logits) of the scored targets of a batch, [N] each, from
 * the LM head at those positions alone (as TRL's use_logits_to_keep saves the prompt's), in chunks
 * of tokens for batches of up to `batchTokens` scored tokens while the head is frozen; `prefix`
 * names its weights in the State, `lora` its adapter's place. The reference's (`frozen`) send back
 * no gradient.
 */
function scoredLogprobs(
  cfg: ModelConfig,
  batch: ReturnType<typeof pairInputs>,
  batchTokens: number,
  frozen: boolean,
  prefix = '',
  lora?: AdapterPlace,
) {
  const p = modelInputs(cfg, 'lm', prefix, lora);
  const params = trainableInputs(p, lora?.adapter);
  const { hidden } = transformer(p, cfg, sequenceInputs('T', ROWS)); // [2P, T, D]
  const scoredHidden = gather(reshape(hidden, [-1, hidden.shape[2]]), batch.positions);
  const head = { temperature: 1, batchTokens, params: frozen ? undefined : params };
  return { params, scored: lmHeadLogprobs(p, cfg, scoredHidden, batch.targets, head) };
}

/**
 * DPO's training graph on batches of P pairs (2P rows, chosen first), of up to `batchTokens` scored
 * tokens (0: the head in one chunk); with `lora`, only the adapter trains.
 */
export function dpoLossGraph(cfg: ModelConfig, s: DpoLossSettings, lora?: AdapterPlace, batchTokens = 0): StageGraph {
  const batch = pairInputs();
  const { params, scored } = scoredLogprobs(cfg, batch, batchTokens, false, '', lora);
  return { ...dpoObjective(scored, batch.rows, batch.reference, s), params };
}

/**
 * Each row's log-prob of its completion under the model whose weights are under `prefix` (the
 * reference's), with its own adapter where `lora` says, on batches of up to `batchTokens` scored tokens.
 */
export function referenceLogpsGraph(
  cfg: ModelConfig,
  average: boolean,
  prefix: string,
  lora?: AdapterPlace,
  batchTokens = 0,
) {
  const batch = pairInputs();
  const { scored } = scoredLogprobs(cfg, batch, batchTokens, true, prefix, lora);
  return { logps: sequenceLogps(scored.logprobs, batch.rows, average) };
}
