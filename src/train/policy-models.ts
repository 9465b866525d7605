/**
 * The models of a stage that trains a policy against a frozen reference, the model it starts from
 * (DPO, GRPO, RLOO). In full, the policy has its own copy of the weights and the reference is held
 * under "ref.". With the stage's `peft`, the weights are held once: the reference is the model under
 * "ref." (the base, with the model's own adapter when it is an adapter folder), and the policy is an
 * adapter (that one continued, else a fresh one) reading the base there: the reference is the
 * policy's base with the trained adapter off. Without a reference (beta 0), the policy is the only model.
 */
import { AdapterPlace, LoraConfig } from '../model/lora';
import { Experiment } from '../experiment/config';
import { isOnBase, placeOnBase, trainedModel } from './adapters';
import { LoadedModel, loadModel } from './model-state';
import { ModelSlot, TrainerSetup, oneModel } from './stage';

/** Where the graphs find the policy's and the reference's adapters; none in full. */
export interface PolicyPlaces {
  policy?: AdapterPlace;
  ref?: AdapterPlace;
}

export interface PolicyModels extends Pick<TrainerSetup, 'models' | 'resumed'> {
  /** The policy as it trains (its config, tokenizer and adapter). */
  policy: LoadedModel;
  places: PolicyPlaces;
}

/** The run a stage's models are for: its experiment, run folder and the checkpoint it resumes from. */
export interface PolicyRun {
  experiment: Experiment;
  outputDir: string;
  /** A checkpoint of this run to continue from: the policy's weights (or adapter) and moments. */
  resumeFrom?: string;
}

/**
 * The policy, trained, and the frozen reference both start from `start` (as loaded, adapter and
 * all); `where` names the stage's peft section in errors; without `reference`, none is held.
 */
export function policyModels(
  start: LoadedModel,
  run: PolicyRun,
  { peft }: { peft?: LoraConfig },
  o: { where: string; reference: boolean },
): PolicyModels {
  const { seed } = run.experiment;
  const at = { seed, outputDir: run.outputDir, where: o.where };
  const first = trainedModel(start, peft, at);
  const policy = run.resumeFrom ? trainedModel(loadModel(run.resumeFrom, seed), peft, at) : first;
  const one = oneModel(policy, run.resumeFrom);
  if (!o.reference) return { ...one, policy, places: { policy: policy.adapter && { adapter: policy.adapter } } };
  const reference = peft ? start : first;
  const ref: ModelSlot = {
    name: 'ref',
    config: reference.config,
    head: 'lm',
    params: reference.params,
    adapter: reference.adapter,
    trainable: false,
  };
  if (!policy.adapter) return { models: [ref, ...one.models], resumed: one.resumed, policy, places: {} };
  const base = first.adapter!.baseModel;
  if (!isOnBase(policy, base))
    throw new Error(
      `${run.resumeFrom}: the policy adapter was made for the base ${policy.adapter.baseModel}, but the model it starts from has the base ${base}`,
    );
  const shared = placeOnBase(policy, base, `${ref.name}.`);
  return {
    models: [ref, { ...one.models[0], params: shared.params }],
    resumed: one.resumed,
    policy,
    places: { policy: shared.place, ref: reference.adapter && { adapter: reference.adapter } },
  };
}
