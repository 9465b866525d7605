/**
 * Training that goes wrong: weights that are not finite are never saved nor loaded, a diverged run
 * says which checkpoint is intact (or that none was saved), and a loss that climbs far above its
 * start ends the run with a warning.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { loadCheckpoint } from '../../src/model/checkpoint';
import { readSafetensors, writeSafetensors } from '../../src/model/safetensors';
import { RunEvent } from '../../src/protocol/runner';
import { Experiment, parseExperiment } from '../../src/experiment/config';
import { LossRise } from '../../src/train/divergence';
import { sampleFromCheckpoint } from '../../src/train/samples';
import { runSft } from '../../src/train/sft';
import { Rng } from '../../src/util/rng';
import { tempDir } from '../helpers/temp';

const dir = tempDir('divergence');
const data = path.join(dir, 'sft.jsonl');
fs.writeFileSync(
  data,
  [
    ['cat', 'fish'],
    ['dog', 'meat'],
    ['cow', 'grass'],
    ['bird', 'seeds'],
  ]
    .map(([animal, food]) =>
      JSON.stringify({ prompt: `What does a ${animal} eat?`, completion: ` A ${animal} eats ${food}.` }),
    )
    .join('\n'),
);

function experiment(sft: Record<string, unknown>): Experiment {
  return parseExperiment(
    {
      seed: 3,
      model: 'tiny',
      model_size: { n_layer: 1, n_embd: 32, n_head: 2, n_positions: 32 },
      runtime: { provider: 'cpu', threads: 1 },
      sft: {
        data,
        per_device_train_batch_size: 4,
        warmup_steps: 0,
        logging_steps: 1,
        eval_steps: 1,
        save_steps: 1,
        eval_fraction: 0.25,
        ...sft,
      },
    },
    'test',
  );
}

const saved = (out: string) =>
  fs.existsSync(out) ? fs.readdirSync(out).filter((name) => name === 'model' || name.startsWith('checkpoint-')) : [];

test('SFT with learning_rate 1e308 stops at step 1 and saves no checkpoint, its eval loss or its weights being NaN', async () => {
  const out = path.join(dir, 'huge-lr');
  const error = await runSft({
    experiment: experiment({ learning_rate: 1e308, max_steps: 4 }),
    outputDir: out,
    emit: () => {},
  }).catch((e: Error) => e);
  assert.match(
    String(error),
    /SFT diverged at step 1 \(eval_loss NaN\); no checkpoint was saved — lower learning_rate and start again/,
  );
  assert.deepEqual(saved(out), []);

  // Without held-out data nothing evaluates the updated weights: the save finds them not finite.
  const blind = path.join(dir, 'huge-lr-no-eval');
  const noEval = experiment({ learning_rate: 1e308, max_steps: 4, eval_fraction: 0 });
  const unseen = await runSft({ experiment: noEval, outputDir: blind, emit: () => {} }).catch((e: Error) => e);
  assert.match(
    String(unseen),
    /SFT diverged at step 1 \(weight "[\w.]+" became (NaN|-?Infinity)\); no checkpoint was saved/,
  );
  assert.deepEqual(saved(blind), []);
});

test('a resumed run that diverges names the checkpoint it resumed from, which still loads', async () => {
  const out = path.join(dir, 'resumed');
  const stop = new AbortController();
  const first = await runSft({
    experiment: experiment({ learning_rate: 1e-3, max_steps: 4 }),
    outputDir: out,
    signal: stop.signal,
    emit: (e) => {
      if (e.type === 'progress' && e.step === 2) stop.abort();
    },
  });
  assert.equal(first.modelDir, path.join(out, 'checkpoint-2'));
  const huge = experiment({ learning_rate: 1e308, max_steps: 4 });
  const error = await runSft({ experiment: huge, outputDir: out, resumeFrom: first.modelDir, emit: () => {} }).catch(
    (e: Error) => e,
  );
  const intact = `the last checkpoint, ${first.modelDir}, is intact — lower learning_rate and resume from it`;
  assert.ok(String(error).includes(`SFT diverged at step 3 (eval_loss NaN); ${intact}`), String(error));
  assert.deepEqual(saved(out).sort(), ['checkpoint-1', 'checkpoint-2']);
  for (const t of loadCheckpoint(first.modelDir).params.values())
    assert.ok((t.data as Float32Array).every(Number.isFinite));
});

test('SFT whose loss climbs far above its start (learning_rate 10) ends done, with a warning logged once', async () => {
  const events: RunEvent[] = [];
  const sft = experiment({ learning_rate: 10, max_steps: 8, eval_fraction: 0, save_steps: 100 });
  await runSft({ experiment: sft, outputDir: path.join(dir, 'climb'), emit: (e) => events.push(e) });
  const losses = events.flatMap((e) => (e.type === 'metrics' ? [e.values.loss] : []));
  assert.ok(losses.at(-1)! > 10 * losses[0], `loss ${losses[0]} → ${losses.at(-1)}`);
  const warnings = events.flatMap((e) => (e.type === 'log' && e.level === 'warn' ? [e.message] : []));
  assert.equal(warnings.length, 1, warnings.join('\n'));
  assert.match(
    warnings[0],
    /^loss rose from 10\.\d+ \(first logged\) to \d+(\.\d+)? \(mean of the last 5 logged\) by step 6: training is unstable — lower learning_rate$/,
  );
  const done = events.find((e) => e.type === 'done');
  assert.deepEqual(done?.type === 'done' && [done.stopped, done.warning], [false, warnings[0]]);

  // A loss that falls, or climbs only a little above a small start, is no reason to warn.
  const calm = new LossRise('loss');
  assert.deepEqual([5, 4, 3, 2.5, 2, 2, 1.8].map((v, i) => calm.add(`step ${i}`, v)).filter(Boolean), []);
  const small = new LossRise('loss');
  assert.deepEqual(
    [0.2, 0.7, 0.8, 0.9, 0.9, 0.9].map((v, i) => small.add(`step ${i}`, v)).filter(Boolean),
    [],
    '4.5× but not 1 higher',
  );
});

test('generating from a checkpoint whose weights are not finite fails, naming the checkpoint and the tensor', async () => {
  const out = path.join(dir, 'poisoned');
  await runSft({
    experiment: experiment({ learning_rate: 1e-3, max_steps: 1, eval_fraction: 0 }),
    outputDir: out,
    emit: () => {},
  });
  const model = path.join(out, 'model');
  const file = path.join(model, 'model.safetensors');
  const { tensors, metadata } = readSafetensors(file);
  tensors.get('transformer.h.0.attn.c_attn.weight')!.data[5] = NaN;
  writeSafetensors(file, tensors, metadata);

  const message = `${file}: tensor "h.0.attn.c_attn.weight" holds NaN; the weights are not finite`;
  assert.throws(
    () => loadCheckpoint(model),
    (e: Error) => e.message.startsWith(message),
  );
  const generated = await sampleFromCheckpoint(model, ['What does a cat eat?'], new Rng(0), {
    maxNewTokens: 2,
    temperature: 0,
    topK: 0,
    topP: 1,
  }).catch((e: Error) => e);
  assert.ok(generated instanceof Error && generated.message.startsWith(message), String(generated));
});
