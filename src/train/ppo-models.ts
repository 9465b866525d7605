/**
 * PPO's three models in one State: the reference ("ref."), the policy ("policy.") and the value
 * model ("value."). In full, the policy starts from the SFT model and the value model from the
 * reward model (else the SFT model), each with its own weights. With `ppo.peft`, both are adapters
 * and the SFT model's weights are held once: the reference is the base with the adapters off (with
 * the SFT model's own adapter, when it is one), the policy's adapter runs on the same base tensors,
 * and so does the value model's when it comes from the same base (else it keeps its own, frozen).
 */
import * as path from 'path';
import { Head } from '../model/config';
import { AdapterPlace } from '../model/lora';
import { withScoreHead } from '../model/reward';
import { sameTokenizer } from '../model/tokenizer';
import { STAGE_INFO } from '../shared/stages';
import { Rng } from '../util/rng';
import { Experiment, PpoSettings } from '../experiment/config';
import { isOnBase, mergedModel, placeOnBase, trainedModel } from './adapters';
import { LoadedModel, loadModel } from './model-state';
import { ModelSlot, TrainerSetup } from './stage';

/** The models of a checkpoint-N/ folder: the policy (what `generate` reads) and the value model. */
export const [POLICY, VALUE] = STAGE_INFO.ppo.checkpointModels;

/** Where the graphs find each model: its prefix in the State and, for an adapter, its place. */
export interface PpoPlaces {
  ref?: AdapterPlace;
  policy?: AdapterPlace;
  value?: AdapterPlace;
}

export interface PpoModels extends Pick<TrainerSetup, 'models' | 'resumed'> {
  places: PpoPlaces;
}

/** The SFT model (the policy's start and the reference): with ppo.peft as loaded, else with any adapter merged. */
export function sftModel(s: PpoSettings, exp: Experiment): LoadedModel {
  const loaded = loadModel(s.sft_model ?? exp.model, exp.seed, exp.model_size);
  return s.peft ? loaded : mergedModel(loaded);
}

interface Inputs {
  seed: number;
  outputDir: string;
  resumeFrom?: string;
  sftName: string;
}

/**
 * PPO's models: the policy (from the SFT model) and the value model (from the reward model, else
 * the SFT model, with a fresh score head) trained; the SFT model frozen as the reference. Resuming,
 * the policy and value model come from the checkpoint's folders.
 */
export function ppoModels(o: Inputs, s: PpoSettings, sft: LoadedModel): PpoModels {
  const load = (dir: string) => (s.peft ? loadModel(dir, o.seed) : mergedModel(loadModel(dir, o.seed)));
  const resumed = o.resumeFrom
    ? { policy: load(path.join(o.resumeFrom, POLICY)), value: load(path.join(o.resumeFrom, VALUE)) }
    : undefined;
  const valueInit = resumed?.value ?? (s.reward_model ? load(s.reward_model) : undefined);
  if (valueInit) checkValueModel(valueInit, sft, o, s);
  const setup = s.peft
    ? adaptedModels(o, s, sft, resumed?.policy, valueInit)
    : fullModels(o, sft, resumed?.policy ?? sft, valueInit ?? sft);
  return {
    ...setup,
    resumed: o.resumeFrom ? { from: o.resumeFrom, trainerState: resumed?.policy.checkpoint?.trainerState } : undefined,
  };
}

function checkValueModel(valueInit: LoadedModel, sft: LoadedModel, o: Inputs, s: PpoSettings): void {
  if (!sameTokenizer(valueInit.tokenizer, sft.tokenizer)) {
    const which = o.resumeFrom ? `the value model in ${o.resumeFrom}` : `the reward model ${s.reward_model}`;
    throw new Error(
      `${which} reads another tokenizer (${valueInit.tokenizer.name}) than the policy ${o.sftName} ` +
        `(${sft.tokenizer.name}), so it would score the policy's token ids as other text: train it from the same base model`,
    );
  }
  const size = (m: LoadedModel) => `${m.config.modelType}, ${m.config.nLayer} layers, d=${m.config.nEmbd}`;
  if (size(valueInit) !== size(sft)) {
    throw new Error(`the value model (${size(valueInit)}) must have the policy's architecture and size (${size(sft)})`);
  }
}

/** A trained slot of a model, with its source folder, dtype and (resuming) AdamW moments. */
function slot(name: string, m: LoadedModel, finalDir: string, resuming: boolean): ModelSlot {
  return {
    name,
    config: m.config,
    head: m.head,
    params: m.params,
    adapter: m.adapter,
    trainable: true,
    optimizerState: resuming ? m.checkpoint?.optimizerState : undefined,
    finalDir,
    source: m.source,
    dtype: m.dtype,
  };
}

/** The value model's start: `m` with a score head (its own, or drawn). */
function withScore(m: LoadedModel, seed: number): LoadedModel {
  return { ...m, head: 'score' as Head, params: withScoreHead(m.params, m.config, new Rng(seed)) };
}

function fullModels(o: Inputs, sft: LoadedModel, policy: LoadedModel, value: LoadedModel): Omit<PpoModels, 'resumed'> {
  const resuming = o.resumeFrom !== undefined;
  return {
    models: [
      { name: 'ref', config: sft.config, head: 'lm', params: sft.params, trainable: false },
      slot(POLICY, policy, 'model', resuming),
      slot(VALUE, withScore(value, o.seed), 'value', resuming),
    ],
    places: {},
  };
}

/**
 * The adapters' models over one copy of the SFT model's base: a model whose adapter was made for
 * that base keeps in its own slot only what it trains; one on another base (a full reward model)
 * keeps that base too. A resumed policy must have been made for the SFT model's base.
 */
function adaptedModels(
  o: Inputs,
  s: PpoSettings,
  sft: LoadedModel,
  resumedPolicy?: LoadedModel,
  valueInit?: LoadedModel,
): Omit<PpoModels, 'resumed'> {
  const at = { seed: o.seed, outputDir: o.outputDir, where: 'ppo.peft' };
  const start = trainedModel(sft, s.peft, at);
  const base = start.adapter!.baseModel;
  const policy = resumedPolicy ? trainedModel(resumedPolicy, s.peft, at) : start;
  if (!isOnBase(policy, base))
    throw new Error(
      `${o.resumeFrom}: the policy adapter was made for the base ${policy.adapter!.baseModel}, but the SFT model ${o.sftName} has the base ${base}`,
    );
  const value = trainedModel(withScore(valueInit ?? { ...sft, source: sft.source ?? base }, o.seed), s.peft, at);
  const resuming = o.resumeFrom !== undefined;
  /** A model on the shared base holds only its saved modules; the base's weights are the reference's. */
  const place = (name: string, m: LoadedModel, finalDir: string) => {
    const { params, place } = placeOnBase(m, base, 'ref.');
    return { slot: { ...slot(name, m, finalDir, resuming), params }, place };
  };
  const p = place(POLICY, policy, 'model'),
    v = place(VALUE, value, 'value');
  return {
    models: [
      { name: 'ref', config: sft.config, head: 'lm', params: sft.params, adapter: sft.adapter, trainable: false },
      p.slot,
      v.slot,
    ],
    places: { ref: sft.adapter && { adapter: sft.adapter }, policy: p.place, value: v.place },
  };
}
