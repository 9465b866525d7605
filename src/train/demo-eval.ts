/**
 * The demo's before/after measurements of a policy on held-out prompts: its greedy answers, the
 * judge's verdict on each (src/data/judge.ts), whether each states the prompt's answer, the reward
 * model's mean score of them, and the policy's KL to the SFT policy, estimated on its own samples
 * as TRL's objective/kl is: the mean over sampled responses y of log π(y|x) − log π_SFT(y|x).
 */
import { Program, Runtime, RuntimeOptions } from '../engine/runtime';
import { State } from '../engine/state';
import { toOnnx } from '../engine/onnx';
import { TokenExample } from '../data/batch';
import { followsRule, statesAnswer } from '../data/judge';
import { responseText } from '../model/text-stream';
import { Tokenizer } from '../model/tokenizer';
import { ModelConfig } from '../model/config';
import { SampleRow } from '../protocol/runner';
import { Rng } from '../util/rng';
import { mergedModel } from './adapters';
import { scoredRowFeeds } from './dpo-batch';
import { referenceLogpsGraph } from './dpo-loss';
import { GREEDY, Generation, Generator } from './generate';
import { loadModel, putTensors } from './model-state';
import { Prompt, readPrompts } from './prompts';
import { Scorer } from './scorer';

/** Rows per forward pass when scoring log-probs. */
const BATCH = 32;

export interface EvalSettings {
  /** Longest answer in tokens. */
  maxNewTokens: number;
  /** Sampled responses per prompt for the KL estimate. */
  klSamples: number;
  seed: number;
  runtime: RuntimeOptions;
}

/** One policy's figures on the held-out prompts. */
export interface PolicyEval {
  policy: string;
  /** Greedy answers, each with the reward model's score. */
  answers: SampleRow[];
  /** Answers that follow the judge's rule. */
  passed: number;
  /** Answers that state the prompt's answer. */
  correct: number;
  prompts: number;
  meanReward: number;
  /** Mean sequence KL to the SFT policy, in nats. */
  kl: number;
}

/** A policy checkpoint loaded for sampling and for scoring sequences. */
class LoadedPolicy {
  private constructor(
    readonly state: State,
    readonly tokenizer: Tokenizer,
    readonly generator: Generator,
    private readonly logpsProgram: Program,
  ) {}

  static async open(dir: string, runtime: RuntimeOptions): Promise<LoadedPolicy> {
    const model = mergedModel(loadModel(dir, 0));
    const state = new State(await Runtime.create(runtime));
    putTensors(state, model.params);
    const cfg: ModelConfig = model.config;
    const generator = await Generator.create(state.runtime, cfg, state, model.tokenizer.padId);
    const program = await state.runtime.load(toOnnx(referenceLogpsGraph(cfg, false, ''), 'sequence_logps'));
    return new LoadedPolicy(state, model.tokenizer, generator, program);
  }

  /** Each row's summed log-prob of its scored (response) tokens. */
  async logps(rows: readonly TokenExample[]): Promise<number[]> {
    const out: number[] = [];
    for (let i = 0; i < rows.length; i += BATCH) {
      const { feeds } = scoredRowFeeds(rows.slice(i, i + BATCH), this.tokenizer.padId);
      const result = await this.logpsProgram.run(this.state.feedsFor(this.logpsProgram, feeds));
      out.push(...Array.from(result.logps.data as Float32Array));
    }
    return out;
  }

  async release(): Promise<void> {
    await this.generator.release();
    await this.logpsProgram.release();
    await this.state.release();
  }
}

/** A prompt and its generated response as one scored row: only the response's tokens count. */
function responseRow(prompt: readonly number[], g: Generation): TokenExample {
  return { ids: [...prompt, ...g.tokens], lossMask: [...prompt.map(() => 0), ...g.tokens.map(() => 1)] };
}

/**
 * Measures each policy (name → checkpoint folder) on the prompts of a data file, whose "answer"
 * column holds the reference answers; the first policy is the SFT policy the others' KL is
 * measured against.
 */
export async function evaluatePolicies(
  policies: [name: string, dir: string][],
  promptsFile: string,
  scorer: Scorer,
  s: EvalSettings,
): Promise<PolicyEval[]> {
  const sft = await LoadedPolicy.open(policies[0][1], s.runtime);
  const results: PolicyEval[] = [];
  try {
    const { prompts } = await readPrompts(promptsFile, sft.tokenizer);
    for (const [name, dir] of policies) {
      const policy = name === policies[0][0] ? sft : await LoadedPolicy.open(dir, s.runtime);
      try {
        results.push(await evaluatePolicy(name, policy, sft, prompts, scorer, s));
      } finally {
        if (policy !== sft) await policy.release();
      }
    }
  } finally {
    await sft.release();
  }
  return results;
}

async function evaluatePolicy(
  name: string,
  policy: LoadedPolicy,
  sft: LoadedPolicy,
  prompts: readonly Prompt[],
  scorer: Scorer,
  s: EvalSettings,
): Promise<PolicyEval> {
  const { tokenizer, generator } = policy;
  const ids = prompts.map((p) => p.ids);
  const greedy = await generator.generate(
    ids,
    { ...GREEDY, maxNewTokens: s.maxNewTokens },
    tokenizer.stopIds,
    new Rng(s.seed),
  );
  const rows = greedy.map((g, i) => ({ prompt: prompts[i].text, response: responseText(tokenizer, g.tokens) }));
  const scores = await scorer.scoreTexts(rows);
  const answers = rows.map((r, i): SampleRow => ({ ...r, score: scores[i] }));
  const answerOf = (i: number) => prompts[i].columns.answer;
  const sampling = { maxNewTokens: s.maxNewTokens, temperature: 1, topK: 0, topP: 1 };
  const samples = await generator.generateGroups(ids, s.klSamples, sampling, tokenizer.stopIds, new Rng(s.seed));
  const sampledRows = samples.map((g, k) => responseRow(ids[Math.floor(k / s.klSamples)], g));
  const [own, reference] = [await policy.logps(sampledRows), await sft.logps(sampledRows)];
  return {
    policy: name,
    answers,
    passed: answers.filter((a) => followsRule(a.prompt, a.response)).length,
    correct: answers.filter((a, i) => {
      const answer = answerOf(i);
      return typeof answer === 'string' && statesAnswer(a.response, answer);
    }).length,
    prompts: prompts.length,
    meanReward: scores.reduce((a, b) => a + b, 0) / scores.length,
    kl: own.reduce((a, x, i) => a + x - reference[i], 0) / own.length,
  };
}
