import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { EXPERIMENT_STAGES } from '../../src/protocol/runner';
import { STAGE_INFO } from '../../src/shared/stages';
import { program } from '../../src/cli';

const manifest = JSON.parse(fs.readFileSync(path.join(__dirname, '../../package.json'), 'utf8'));

test("stages: each stage's palette command is contributed in the RLHF category and activates the extension", () => {
  const commands = new Map<string, { category?: string }>(
    manifest.contributes.commands.map((c: { command: string }) => [c.command, c]),
  );
  for (const stage of EXPERIMENT_STAGES) {
    const { command } = STAGE_INFO[stage];
    assert.equal(commands.get(command)?.category, 'RLHF', `${stage}: ${command} is not contributed with category RLHF`);
  }
});

test('stages: each stage is a CLI verb, and only training stages take --resume and --steps', () => {
  const verbs = new Map(program().commands.map((c) => [c.name(), c]));
  for (const stage of EXPERIMENT_STAGES) {
    const verb = verbs.get(stage);
    assert.ok(verb, `rlhf ${stage} is missing`);
    assert.equal(verb.description(), STAGE_INFO[stage].cli.description);
    const flags = verb.options.map((o) => o.long);
    const trains = STAGE_INFO[stage].cli.steps !== undefined;
    assert.equal(flags.includes('--resume'), trains, `${stage}: --resume`);
    assert.equal(flags.includes('--steps'), trains, `${stage}: --steps`);
  }
});

test('stages: the charts a stage opens with have distinct titles, and its key metrics are charted', () => {
  for (const stage of EXPERIMENT_STAGES) {
    const { dashboard, keyMetrics } = STAGE_INFO[stage];
    const titles = dashboard.map((c) => c.title);
    assert.equal(new Set(titles).size, titles.length, `${stage}: repeated chart titles`);
    const charted = new Set(dashboard.flatMap((c) => c.metrics));
    for (const metric of keyMetrics) assert.ok(charted.has(metric), `${stage}: key metric ${metric} has no chart`);
  }
});
