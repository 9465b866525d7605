/** Open Labeling gives a view that is too small room: it moves it to the panel, then maximises the panel. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ViewLayout } from '../../src/protocol/labeling';
import { LABELING_PANEL, revealWithRoom } from '../../src/views/labeling/room';

/** A workbench whose view reports these layouts, one per show or move, and records the commands run. */
function workbench(reports: (ViewLayout | undefined)[], last?: ViewLayout) {
  const ran: unknown[][] = [];
  return {
    ran,
    host: {
      run: async (command: string, ...args: unknown[]) => void ran.push([command, ...args]),
      nextLayout: async () => reports.shift(),
      lastLayout: () => last,
    },
  };
}

const small = { width: 300, height: 200, fits: false };
const roomy = { width: 1200, height: 300, fits: true };

test('Open Labeling: a view that fits is only shown', async () => {
  const { ran, host } = workbench([{ width: 300, height: 382, fits: true }]);
  assert.equal(await revealWithRoom(host, 'rlhf.labeling'), 'fits');
  assert.deepEqual(ran, [['rlhf.labeling.focus']]);
});

test('Open Labeling: a view already shown and unchanged is judged by its last report', async () => {
  const { ran, host } = workbench([undefined, roomy], small);
  assert.equal(await revealWithRoom(host, 'rlhf.labeling'), 'moved');
  assert.deepEqual(ran, [
    ['rlhf.labeling.focus'],
    ['vscode.moveViews', { viewIds: ['rlhf.labeling'], destinationId: LABELING_PANEL }],
    ['rlhf.labeling.focus'],
  ]);
});

test('Open Labeling: a moved view that still does not fit gets the maximised panel', async () => {
  const { ran, host } = workbench([small, { width: 1200, height: 150, fits: false }]);
  assert.equal(await revealWithRoom(host, 'rlhf.labeling'), 'maximized');
  assert.deepEqual(ran.at(-1), ['workbench.action.toggleMaximizedPanel']);
});

test('Open Labeling: a view that did not move lets the person pick a place; no report, nothing moves', async () => {
  const picked = workbench([small, undefined]);
  assert.equal(await revealWithRoom(picked.host, 'rlhf.labeling'), 'picked');
  assert.deepEqual(picked.ran.at(-1), ['workbench.action.moveFocusedView', 'rlhf.labeling']);
  const silent = workbench([undefined]);
  assert.equal(await revealWithRoom(silent.host, 'rlhf.labeling'), 'unknown');
  assert.deepEqual(silent.ran, [['rlhf.labeling.focus']]);
});

test('Open Labeling: the panel container it moves to is contributed', async () => {
  const manifest = (await import('../../package.json')) as {
    contributes: { viewsContainers: { panel: { id: string }[] } };
  };
  const ids = manifest.contributes.viewsContainers.panel.map((c) => `workbench.view.extension.${c.id}`);
  assert.ok(ids.includes(LABELING_PANEL));
});
