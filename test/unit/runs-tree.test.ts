/** The Runs view: one click on a run shows that run's charts (its own stage's dashboard). */
import './vscode-stub';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RunRegistry, runTitle } from '../../src/runs/registry';
import type { WorkspaceRuns } from '../../src/views/workspaceRuns';
import { tempDir } from '../helpers/temp';

test('Runs view: a click on a run runs Show Training Charts with that run', () => {
  const { RunsTreeProvider } = require('../../src/views/runsTree') as typeof import('../../src/views/runsTree');
  const registry = new RunRegistry(tempDir('runs-tree'));
  const record = registry.create({ name: 'pets', stage: 'ppo', configFile: '/w/pets.rlhf.json' });
  const runs = { onDidChange: () => ({ dispose() {} }), list: () => [{ registry, record }] };
  const tree = new RunsTreeProvider(runs as unknown as WorkspaceRuns);
  const item = tree.getTreeItem({ registry, record });
  assert.equal(item.command?.command, 'rlhf.showCharts');
  assert.deepEqual(item.command?.arguments, [{ registry, record }]);
  tree.dispose();
});

test('Runs view: runs of one experiment and stage are numbered, a renamed run keeps its name, the key metric comes first', () => {
  const { RunsTreeProvider } = require('../../src/views/runsTree') as typeof import('../../src/views/runsTree');
  const registry = new RunRegistry(tempDir('runs-names'));
  const config = '/w/demo.rlhf.json';
  const first = registry.create({ name: 'demo', stage: 'sft', configFile: config });
  const second = registry.create({ name: 'demo', stage: 'sft', configFile: config });
  const ppo = registry.create({ name: 'demo', stage: 'ppo', configFile: config });
  const other = registry.create({ name: 'demo', stage: 'sft', configFile: '/w/other/demo.rlhf.json' });
  assert.deepEqual([first, second, ppo, other].map(runTitle), [
    'demo SFT #1',
    'demo SFT #2',
    'demo PPO #1',
    'demo SFT #1',
  ]);
  registry.rename(second, '  small lr  ');
  assert.equal(runTitle(registry.get(second.id)!), 'small lr');
  registry.rename(second, '');
  assert.equal(runTitle(registry.get(second.id)!), 'demo SFT #2');

  Object.assign(first, { status: 'finished', step: 300, total: 300, metrics: { loss: 1.25 } });
  const runs = { onDidChange: () => ({ dispose() {} }), list: () => [] };
  const tree = new RunsTreeProvider(runs as unknown as WorkspaceRuns);
  const item = tree.getTreeItem({ registry, record: first });
  assert.equal(item.label, 'demo SFT #1');
  assert.match(String(item.description), /^loss 1\.2500 · finished · step 300\/300$/);
  tree.dispose();
});
