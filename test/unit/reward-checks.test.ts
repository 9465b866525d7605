/**
 * The reward-model step says what to do when there are no labels yet, warns when it trains on too
 * few decided pairs or ends at or below chance, and the stages that score with such a model say so.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { loadExperiment } from '../../src/experiment/config';
import { rewardModelWarnings, weakRewardModel } from '../../src/model/reward-warnings';
import { RunEvent } from '../../src/protocol/runner';
import { withRewardModelWarning } from '../../src/runner/stages';
import { runRm } from '../../src/train/reward';
import { atChance, fewPairs, MIN_DECIDED_PAIRS } from '../../src/train/reward-checks';
import { tempDir } from '../helpers/temp';

const dir = tempDir('rm-checks');

function experimentFile(rm: Record<string, unknown> = {}): string {
  const file = path.join(dir, 'pets.rlhf.json');
  fs.writeFileSync(
    file,
    JSON.stringify({
      name: 'pets',
      seed: 1,
      model: 'tiny',
      model_size: { n_layer: 1, n_embd: 32, n_head: 2, n_positions: 32 },
      runtime: { provider: 'cpu', threads: 1 },
      comparisons: { prompts: 'prompts.jsonl', queue: 'queue.jsonl', preferences: 'preferences.jsonl' },
      rm: { data: 'preferences.jsonl', max_steps: 3, logging_steps: 1, eval_steps: 1, eval_fraction: 0.34, ...rm },
    }),
  );
  return file;
}

test('RM with no labels yet says what to do next, not ENOENT', async () => {
  const exp = loadExperiment(experimentFile(), dir);
  const run = runRm({ experiment: exp, outputDir: path.join(dir, 'none'), emit: () => {} });
  await assert.rejects(run, (err: Error) => {
    assert.doesNotMatch(err.message, /ENOENT/);
    assert.match(err.message, /preferences\.jsonl: no labels yet/);
    assert.match(err.message, /Generate Comparisons .*queue\.jsonl/);
    assert.match(err.message, /label them in the Labeling view/);
    return true;
  });
  const other = loadExperiment(experimentFile({ data: 'elsewhere.jsonl' }), dir);
  await assert.rejects(
    runRm({ experiment: other, outputDir: path.join(dir, 'other'), emit: () => {} }),
    /elsewhere\.jsonl \(rm\.data\): the file does not exist\. Point rm\.data at preference pairs/,
  );
});

test('RM on 3 labels finishes with a warning, saved with the model, which PPO repeats', async () => {
  const pairs = ['cat', 'dog', 'owl'].map((animal) => ({
    prompt: `Tell me about the ${animal}.`,
    chosen: ` The ${animal} is kind.`,
    rejected: ' No.',
  }));
  fs.writeFileSync(path.join(dir, 'preferences.jsonl'), pairs.map((p) => JSON.stringify(p) + '\n').join(''));
  const exp = loadExperiment(experimentFile(), dir);
  const events: RunEvent[] = [];
  const { modelDir } = await runRm({ experiment: exp, outputDir: path.join(dir, 'few'), emit: (e) => events.push(e) });
  const done = events.find((e) => e.type === 'done');
  assert.ok(done?.type === 'done' && !done.stopped);
  assert.match(done.warning ?? '', new RegExp(`only 3 labeled pairs with a winner .* at least ${MIN_DECIDED_PAIRS}`));
  const warned = events.filter((e) => e.type === 'log' && e.level === 'warn').map((e) => e.type === 'log' && e.message);
  assert.ok(
    warned.some((m) => /only 3 labeled pairs/.test(String(m))),
    'warned in the log as training starts',
  );
  assert.deepEqual(rewardModelWarnings(modelDir), done.warning?.split('; '));

  const ppoEvents: RunEvent[] = [];
  const ppo = withRewardModelWarning({ emit: (e: RunEvent) => void ppoEvents.push(e) }, [modelDir]);
  ppo.emit({ type: 'done', stage: 'ppo', step: 4, outputDir: 'x', stopped: false });
  assert.deepEqual(
    ppoEvents.map((e) => e.type),
    ['log', 'done'],
  );
  const sentence = weakRewardModel(modelDir)!;
  assert.match(sentence, new RegExp(`the reward model .*few.*model is weak: only 3 labeled pairs`));
  assert.ok(ppoEvents[1].type === 'done' && ppoEvents[1].warning === sentence);
  assert.equal(weakRewardModel(path.join(dir, 'no-such-model')), undefined);
  const fine = { emit: () => {} };
  assert.equal(withRewardModelWarning(fine, [undefined, path.join(dir, 'no-such-model')]), fine);
});

test('RM checks: the minimum of decided pairs, and accuracy at or below chance', () => {
  assert.equal(fewPairs(MIN_DECIDED_PAIRS, 5), undefined);
  assert.match(fewPairs(1, 0)!, /only 1 labeled pair with a winner \(none held out to measure it\)/);
  assert.equal(atChance(0.51), undefined);
  assert.match(atChance(0.5)!, /eval_accuracy 0\.50 is at or below chance/);
  assert.match(atChance(0)!, /eval_accuracy 0\.00 is at or below chance/);
  assert.match(atChance(undefined)!, /not measured .* rm\.eval_fraction/);
});
