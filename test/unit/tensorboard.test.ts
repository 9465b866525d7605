/**
 * TensorBoard event files: what a run's MetricsLog writes is read back by an independent reader
 * (bench/reference/tfevents_read.py: the record framing, masked CRC-32C and Event fields decoded by
 * hand) and by our own decoder, which reports a truncated or corrupted file instead of failing.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { MetricsLog } from '../../src/train/metrics-log';
import { decodeEvents, encodeEvent } from '../../src/util/tfevents';
import { scratchFolder } from '../helpers/checkpoints';

const eventFile = (dir: string) =>
  fs
    .readdirSync(dir)
    .filter((f) => f.startsWith('events.out.tfevents.'))
    .map((f) => path.join(dir, f));

function writeRun(dir: string, resumeStep = 0): void {
  const log = new MetricsLog(dir, resumeStep);
  for (let step = resumeStep + 1; step <= resumeStep + 3; step++)
    log.append('ppo', step, { loss: 1 / step, 'objective/kl': step * 0.5, 'rewards/margins': Number.NaN });
  log.samples(resumeStep + 3, [{ prompt: 'Q | 1', response: 'line one\nline two', score: 0.25 }]);
}

test('scalars and samples are written as TensorBoard events that an independent reader decodes', (t) => {
  let python = true;
  try {
    execFileSync('/usr/bin/python3', ['--version'], { stdio: 'ignore' });
  } catch {
    python = false;
  }
  const dir = scratchFolder('tfevents').scratch;
  writeRun(dir);
  const [file] = eventFile(dir);
  assert.ok(file, 'an events.out.tfevents.* file in the run folder');

  const ours = decodeEvents(fs.readFileSync(file));
  assert.equal(ours.problem, undefined);
  assert.equal(ours.events[0].fileVersion, 'brain.Event:2');
  const scalars = ours.events.filter((e) => e.scalars);
  assert.deepEqual(
    scalars.map((e) => e.step),
    [1, 2, 3],
  );
  assert.ok(Math.abs(scalars[1].scalars!.loss - 0.5) < 1e-7);
  assert.ok(Number.isNaN(scalars[0].scalars!['rewards/margins']));
  const text = ours.events.find((e) => e.texts)!;
  assert.equal(text.step, 3);
  assert.match(text.texts!.samples, /\| Q \\\| 1 \| line one<br>line two \| 0\.2500 \|/);

  if (!python) return t.skip('python3 is not installed: the independent reader did not run');
  const theirs = execFileSync('/usr/bin/python3', ['bench/reference/tfevents_read.py', file], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line.replace(/\bNaN\b/g, 'null')) as Record<string, unknown>);
  assert.equal(theirs.length, ours.events.length);
  assert.equal(theirs[0].file_version, 'brain.Event:2');
  const kl = theirs.filter((e) => e.scalars).map((e) => (e.scalars as Record<string, number>)['objective/kl']);
  assert.deepEqual(kl, [0.5, 1, 1.5]);
  assert.equal((theirs.at(-1)!.texts as Record<string, string>).samples, text.texts!.samples);
});

test('a resumed run starts a new event file that tells TensorBoard to drop later steps', () => {
  const dir = scratchFolder('tfevents-resume').scratch;
  writeRun(dir);
  writeRun(dir, 2);
  const files = eventFile(dir);
  assert.equal(files.length, 2);
  const resumed = files
    .map((f) => decodeEvents(fs.readFileSync(f)).events)
    .find((es) => es.some((e) => e.sessionStart))!;
  const start = resumed.find((e) => e.sessionStart)!;
  assert.equal(start.step, 2);
  assert.deepEqual(
    resumed.filter((e) => e.scalars).map((e) => e.step),
    [3, 4, 5],
  );
});

test('a truncated or corrupted event file keeps the events before the damage and says where it is', () => {
  const whole = Buffer.concat([1, 2, 3].map((step) => encodeEvent({ wallTime: 1, step, scalars: { loss: step } })));
  const cut = decodeEvents(whole.subarray(0, whole.length - 5));
  assert.equal(cut.events.length, 2);
  assert.match(cut.problem!, /truncated record at byte \d+/);
  const flipped = Buffer.from(whole);
  flipped[flipped.length - 8] ^= 0xff;
  const corrupted = decodeEvents(flipped);
  assert.equal(corrupted.events.length, 2);
  assert.match(corrupted.problem!, /CRC/);
});
