/**
 * Experiments may only name files inside their workspace folder: `..`, absolute paths and symlinks
 * that lead out are refused by field, files not created yet are allowed, and model folders are not
 * confined.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { ConfigError, loadExperiment } from '../../src/experiment/config';
import { isInsideWorkspace, workspacePathProblem } from '../../src/util/workspace-path';
import { tempDir } from '../helpers/temp';

const symlinks = { skip: process.platform === 'win32' && 'symlinks need extra rights on Windows' };

/** A workspace folder and, beside it, a folder outside holding a file nobody should see. */
function folders() {
  const root = tempDir('workspace-paths');
  const workspace = path.join(root, 'ws');
  const outside = path.join(root, 'victim');
  fs.mkdirSync(workspace);
  fs.mkdirSync(outside);
  const secret = path.join(outside, '.bashrc');
  fs.writeFileSync(secret, 'export SECRET=hunter2\n');
  return { root, workspace, outside, secret };
}

test('workspace paths: files inside are allowed, also ones not created yet and through `..` that stays inside', () => {
  const { workspace } = folders();
  fs.writeFileSync(path.join(workspace, 'sft.jsonl'), '');
  for (const file of ['sft.jsonl', 'preferences.jsonl', 'new/deeper/queue.jsonl', 'new/../prefs.jsonl', '.']) {
    assert.equal(
      workspacePathProblem('comparisons.preferences', path.join(workspace, file), workspace),
      undefined,
      file,
    );
  }
});

test('workspace paths: `..` and absolute paths out are refused, naming the field, the path and the workspace', () => {
  const { root, workspace, secret } = folders();
  fs.mkdirSync(`${workspace}-evil`);
  for (const file of [
    path.resolve(workspace, '../victim/.bashrc'),
    secret,
    '/etc/passwd',
    path.join(`${workspace}-evil`, 'x.jsonl'),
    root,
  ]) {
    const problem = workspacePathProblem('comparisons.preferences', file, workspace);
    assert.equal(
      problem,
      `comparisons.preferences: ${file} is outside the workspace folder ${workspace}; an experiment may only name files inside it`,
    );
  }
});

test('workspace paths: symlinks are followed, also dangling ones and into folders not created yet', symlinks, () => {
  const { workspace, outside, secret } = folders();
  fs.symlinkSync(outside, path.join(workspace, 'link-to-outside'));
  fs.symlinkSync(secret, path.join(workspace, 'bashrc.jsonl'));
  fs.symlinkSync(path.join(outside, 'new.jsonl'), path.join(workspace, 'dangling.jsonl'));
  fs.symlinkSync(path.join(outside, 'new-dir'), path.join(workspace, 'dangling-dir'));
  fs.symlinkSync(path.join(workspace, 'loop-b'), path.join(workspace, 'loop-a'));
  fs.symlinkSync(path.join(workspace, 'loop-a'), path.join(workspace, 'loop-b'));
  const cases: [string, string | undefined][] = [
    ['link-to-outside/x.jsonl', path.join(outside, 'x.jsonl')],
    ['link-to-outside/.bashrc', secret],
    ['bashrc.jsonl', secret],
    ['dangling.jsonl', path.join(outside, 'new.jsonl')],
    ['dangling-dir/sub/x.jsonl', path.join(outside, 'new-dir', 'sub', 'x.jsonl')],
    ['loop-a', undefined],
  ];
  for (const [name, target] of cases) {
    const file = path.join(workspace, name);
    const leadsTo = target
      ? `it leads to ${fs.realpathSync(path.dirname(outside))}${target.slice(path.dirname(outside).length)}`
      : 'its symlinks do not resolve';
    assert.equal(
      workspacePathProblem('rm.data', file, workspace),
      `rm.data: ${file} (${leadsTo}) is outside the workspace folder ${workspace}; an experiment may only name files inside it`,
    );
  }
  // A workspace opened through a symlink holds the files of the folder it points to.
  const linkedWorkspace = path.join(path.dirname(workspace), 'ws-link');
  fs.symlinkSync(workspace, linkedWorkspace);
  assert.equal(isInsideWorkspace(path.join(workspace, 'prefs.jsonl'), linkedWorkspace), true);
  assert.equal(isInsideWorkspace(path.join(linkedWorkspace, 'prefs.jsonl'), workspace), true);
  fs.symlinkSync(path.join(workspace, 'sub-real'), path.join(workspace, 'inner-link'));
  assert.equal(
    isInsideWorkspace(path.join(workspace, 'inner-link', 'x.jsonl'), workspace),
    true,
    'a symlink that stays inside is fine',
  );
});

test('loadExperiment: every data, queue and preferences path outside the workspace is refused by field; model folders are not', () => {
  const { workspace, outside, secret } = folders();
  const file = path.join(workspace, 'evil.rlhf.json');
  const outsideFields = {
    sft: { data: '../victim/sft.jsonl' },
    comparisons: { prompts: secret, queue: '../victim/queue.jsonl', preferences: '../victim/.bashrc', model: outside },
    rm: { data: '/etc/passwd', model: outside },
    ppo: { prompts: '../../prompts.jsonl', sft_model: outside, reward_model: outside },
  };
  fs.writeFileSync(file, JSON.stringify({ name: 'evil', model: outside, ...outsideFields }));
  const fields = [
    'sft.data',
    'comparisons.prompts',
    'comparisons.queue',
    'comparisons.preferences',
    'rm.data',
    'ppo.prompts',
  ];
  assert.throws(
    () => loadExperiment(file, workspace),
    (e: Error) => {
      assert.ok(e instanceof ConfigError);
      const lines = e.message.split('\n');
      assert.deepEqual(
        lines.map((l) => l.slice(0, l.indexOf(': /'))),
        fields.map((f) => `${file}: ${f}`),
      );
      assert.ok(lines.every((l) => l.includes(`is outside the workspace folder ${workspace}`)));
      assert.doesNotMatch(e.message, /hunter2/);
      return true;
    },
  );

  const models = path.join(workspace, 'models.rlhf.json');
  fs.writeFileSync(
    models,
    JSON.stringify({
      name: 'models',
      model: outside,
      rm: { data: 'prefs.jsonl', model: outside },
      ppo: { prompts: 'p.jsonl', sft_model: outside, reward_model: outside },
    }),
  );
  const experiment = loadExperiment(models, workspace);
  const { rm, ppo } = experiment;
  assert.deepEqual(
    [experiment.model, rm?.model, ppo?.sft_model, ppo?.reward_model],
    [outside, outside, outside, outside],
  );
  assert.equal(experiment.rm?.data, path.join(workspace, 'prefs.jsonl'));
});

test('loadExperiment: an experiment file outside the workspace is refused before it is read', () => {
  const { workspace, secret } = folders();
  for (const file of [secret, path.join(workspace, '..', 'victim', '.bashrc')]) {
    assert.throws(
      () => loadExperiment(file, workspace),
      (e: Error) =>
        e instanceof ConfigError &&
        e.message === `${file}: the experiment file is outside the workspace folder ${workspace}`,
    );
  }
});
