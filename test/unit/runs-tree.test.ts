/** The Runs view: one click on a run shows that run's charts (its own stage's dashboard). */
import './vscode-stub';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { RunRegistry } from '../../src/runs/registry';
import type { WorkspaceRuns } from '../../src/views/workspaceRuns';

test('Runs view: a click on a run runs Show Training Charts with that run', () => {
  const { RunsTreeProvider } = require('../../src/views/runsTree') as typeof import('../../src/views/runsTree');
  const registry = new RunRegistry(fs.mkdtempSync(path.join(os.tmpdir(), 'runs-tree-')));
  const record = registry.create({ name: 'pets', stage: 'ppo', configFile: '/w/pets.rlhf.json' });
  const runs = { onDidChange: () => ({ dispose() {} }), list: () => [{ registry, record }] };
  const tree = new RunsTreeProvider(runs as unknown as WorkspaceRuns);
  const item = tree.getTreeItem({ registry, record });
  assert.equal(item.command?.command, 'rlhf.showCharts');
  assert.deepEqual(item.command?.arguments, [{ registry, record }]);
  tree.dispose();
});
