/**
 * The extension host in plain Node, with a stub `vscode`: activation stays light (no onnxruntime,
 * no engine), every command in the manifest is registered, and the handlers do what they say,
 * starting a real training process where they start one.
 */
import { ui, vscode, workbench } from './vscode-stub';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { performance } from 'perf_hooks';
import { trainingServices } from '../helpers/services';
import { tempDir } from '../helpers/temp';

const root = path.resolve(__dirname, '..', '..');
const workspace = tempDir('workspace');
workbench.setFolders([workspace]);

test('activation registers every manifest command, fast, without loading onnxruntime or the engine', async (t) => {
  const started = performance.now();
  // Required here, not imported above, so the time includes loading the host's modules.
  const extension = require('../../src/extension') as typeof import('../../src/extension');
  const context = workbench.context(root);
  extension.activate(context as never);
  t.diagnostic(
    `activate() from sources under tsx: ${(performance.now() - started).toFixed(0)} ms (bundled: npm run activation-time)`,
  );

  const loaded = Object.keys(require.cache);
  assert.deepEqual(
    loaded.filter((m) => /onnxruntime/.test(m)),
    [],
  );
  assert.deepEqual(
    loaded.filter(
      (m) =>
        m.includes(`${path.sep}src${path.sep}engine${path.sep}`) ||
        m.includes(`${path.sep}src${path.sep}train${path.sep}`),
    ),
    [],
  );

  const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  const declared = manifest.contributes.commands.map((c: { command: string }) => c.command).sort();
  assert.deepEqual([...workbench.commands.keys()].sort(), declared);
  for (const c of manifest.contributes.commands) assert.equal(c.category, 'RLHF', c.command);
  assert.equal(manifest.activationEvents?.includes('*') ?? false, false);
});

test('Open Labeling reveals the Labeling view', async () => {
  ui.reset();
  await vscode.commands.executeCommand('rlhf.openLabeling');
  assert.deepEqual(
    ui.executed.map((e) => e.command),
    ['rlhf.openLabeling', 'rlhf.labeling.focus'],
  );
  assert.deepEqual(ui.shown, []);
});

test('Show Labeling Statistics reveals the Labeling view', async () => {
  ui.reset();
  await vscode.commands.executeCommand('rlhf.showLabelingStatistics');
  assert.deepEqual(
    ui.executed.map((e) => e.command),
    ['rlhf.showLabelingStatistics', 'rlhf.labeling.focus'],
  );
});

test('Export Preferences writes the decided labels of a queue as TRL pairs, and reports what it left out', async () => {
  const dir = path.join(workspace, 'export');
  fs.mkdirSync(dir);
  const experiment = path.join(dir, 'export.rlhf.json');
  fs.writeFileSync(
    experiment,
    JSON.stringify({
      name: 'export',
      model: 'tiny',
      comparisons: { prompts: 'prompts.jsonl', preferences: 'labels.jsonl' },
    }),
  );
  fs.writeFileSync(
    path.join(dir, 'labels.jsonl'),
    [
      { id: 'p0', label: 'b', prompt: 'Hi?', chosen: ' Hello.', rejected: ' Go.' },
      { id: 'p1', label: 'tie', prompt: 'Yo?', response_a: ' Yes.', response_b: ' Yep.' },
    ]
      .map((r) => JSON.stringify(r))
      .join('\n') + '\nnot json\n',
  );
  const dest = path.join(dir, 'out.jsonl');
  ui.reset();
  ui.answers.push(dest);
  await vscode.commands.executeCommand('rlhf.exportPreferences', vscode.Uri.file(experiment));
  assert.deepEqual(
    fs.readFileSync(dest, 'utf8'),
    `${JSON.stringify({ prompt: 'Hi?', chosen: ' Hello.', rejected: ' Go.' })}\n`,
  );
  assert.equal(ui.shown.length, 1);
  assert.equal(ui.shown[0].kind, 'warning');
  assert.match(
    ui.shown[0].message,
    /Exported 1 preference pair to out\.jsonl; 1 tie, both-bad or skipped label left out; 1 bad line skipped/,
  );

  const bare = path.join(dir, 'bare.rlhf.json');
  fs.writeFileSync(bare, JSON.stringify({ name: 'bare', model: 'tiny' }));
  ui.reset();
  await vscode.commands.executeCommand('rlhf.exportPreferences', vscode.Uri.file(bare));
  assert.match(ui.shown[0].message, /no "comparisons" section/);
});

test('commands: training, generation and New Experiment explain Restricted Mode in an untrusted workspace', async () => {
  workbench.setTrusted(false);
  const files = fs.readdirSync(workspace);
  try {
    for (const command of [
      'rlhf.trainSft',
      'rlhf.trainRewardModel',
      'rlhf.runPpo',
      'rlhf.generateWithModel',
      'rlhf.newExperiment',
    ]) {
      ui.reset();
      ui.answers.push('Manage Workspace Trust');
      await vscode.commands.executeCommand(command);
      assert.match(ui.shown[0].message, /disabled in Restricted Mode/);
      assert.equal(ui.executed.at(-1)?.command, 'workbench.trust.manage');
    }
    assert.match(
      ui.shown[0].message,
      /^New Experiment is disabled in Restricted Mode: it writes files into this workspace\./,
    );
    assert.deepEqual(fs.readdirSync(workspace), files, 'nothing was written');
  } finally {
    workbench.setTrusted(true);
  }
});

test('commands: an experiment outside the workspace folders, or naming files outside, is refused', async () => {
  const outside = tempDir('outside');
  const stray = path.join(outside, 'stray.rlhf.json');
  fs.writeFileSync(
    stray,
    JSON.stringify({ name: 'stray', sft: { data: 'sft.jsonl' }, comparisons: { prompts: 'p.jsonl' } }),
  );
  for (const command of ['rlhf.trainSft', 'rlhf.exportPreferences']) {
    ui.reset();
    await vscode.commands.executeCommand(command, vscode.Uri.file(stray));
    assert.deepEqual(
      ui.shown.map((s) => [s.kind, s.message]),
      [
        [
          'error',
          `${stray} is outside the workspace folders: open the folder that holds it. An experiment and the files it names must be inside a workspace folder.`,
        ],
      ],
    );
  }
  assert.deepEqual(fs.readdirSync(outside), ['stray.rlhf.json'], 'no run folder');

  const dir = path.join(workspace, 'leaky');
  fs.mkdirSync(dir);
  const leaky = path.join(dir, 'leaky.rlhf.json');
  fs.writeFileSync(
    leaky,
    JSON.stringify({
      name: 'leaky',
      comparisons: { prompts: 'p.jsonl', preferences: path.join(outside, 'stray.rlhf.json') },
    }),
  );
  ui.reset();
  ui.answers.push(path.join(dir, 'out.jsonl'));
  await vscode.commands.executeCommand('rlhf.exportPreferences', vscode.Uri.file(leaky));
  assert.equal(ui.shown.length, 1);
  assert.ok(
    ui.shown[0].message.startsWith(
      `${leaky}: comparisons.preferences: ${stray} is outside the workspace folder ${workspace}`,
    ),
    ui.shown[0].message,
  );
  assert.equal(fs.existsSync(path.join(dir, 'out.jsonl')), false);
});

test('a training command on an experiment the schema refuses starts nothing and names the field', async () => {
  const dir = path.join(workspace, 'typo');
  fs.mkdirSync(dir);
  const experiment = path.join(dir, 'typo.rlhf.json');
  const texts = [
    [
      JSON.stringify({ name: 'typo', sft: { data: 'sft.jsonl', learning_rat: 1 } }),
      /sft: Unrecognized key: "learning_rat"/,
    ],
    ['{ "name": "typo", ', /typo\.rlhf\.json: not valid JSON/],
  ] as const;
  for (const [text, problem] of texts) {
    fs.writeFileSync(experiment, text);
    ui.reset();
    await vscode.commands.executeCommand('rlhf.trainSft', vscode.Uri.file(experiment));
    assert.equal(ui.shown.length, 1);
    assert.equal(ui.shown[0].kind, 'error');
    assert.match(ui.shown[0].message, /^Not started: /);
    assert.match(ui.shown[0].message, problem);
  }
  assert.deepEqual(fs.readdirSync(dir), ['typo.rlhf.json'], 'no run folder');
  assert.equal(fs.existsSync(path.join(workspace, '.rlhf')), false, 'no run in the registry');
});

test('New Experiment copies the demo into the workspace as <name>/<name>.rlhf.json', async () => {
  ui.reset();
  ui.answers.push('From the demo', 'animals', undefined);
  await vscode.commands.executeCommand('rlhf.newExperiment');
  const file = path.join(workspace, 'animals', 'animals.rlhf.json');
  const config = JSON.parse(fs.readFileSync(file, 'utf8'));
  assert.equal(config.name, 'animals');
  assert.equal(config.$schema, undefined);
  assert.equal(config.sft.data, 'sft.jsonl');
  assert.ok(fs.statSync(path.join(workspace, 'animals', 'sft.jsonl')).size > 1000);
  assert.deepEqual(ui.opened, [file]);

  const { experimentNameProblem } = await import('../../src/commands/experiments');
  assert.match(experimentNameProblem(workspace, 'animals')!, /already exists/);
  assert.match(experimentNameProblem(workspace, '../up')!, /letters/);
  assert.equal(experimentNameProblem(workspace, 'fresh-1'), undefined);
});

test('Train SFT starts a training process from the experiment file, and the Runs view lists the run', async () => {
  const { startStage } = await import('../../src/commands/training');
  const { RunsTreeProvider } = await import('../../src/views/runsTree');
  const { logRuns } = await import('../../src/views/runLog');
  const { services, supervisor, runs, log } = await trainingServices();
  const logging = logRuns(supervisor, log as never);

  const dir = path.join(workspace, 'tiny');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'sft.jsonl'), JSON.stringify({ prompt: 'Hi?', completion: ' Hello.' }));
  const file = path.join(dir, 'tiny.rlhf.json');
  fs.writeFileSync(
    file,
    JSON.stringify({
      name: 'tiny',
      model: 'tiny',
      model_size: { n_layer: 1, n_embd: 32, n_head: 2, n_positions: 16 },
      runtime: { provider: 'cpu', threads: 1 },
      sft: { data: 'sft.jsonl', max_steps: 2, per_device_train_batch_size: 1, logging_steps: 1, eval_fraction: 0 },
    }),
  );
  workbench.settings['rlhf.threads'] = 1;

  ui.reset();
  const run = (await startStage(services, 'sft', vscode.Uri.file(file) as never))!;
  assert.ok(run, 'a run started');
  assert.equal(path.dirname(run.dir), path.join(workspace, '.rlhf', 'runs'));
  assert.equal((await run.process.outcome).status, 'finished');
  await new Promise((r) => setTimeout(r, 50));
  assert.match(ui.shown.at(-1)?.message ?? '', /tiny SFT #\d+ finished/);
  assert.ok(
    log.lines.some((l) => /step 2: loss/.test(l)),
    'metrics reach the log channel',
  );

  const tree = new RunsTreeProvider(runs);
  const [ref] = tree.getChildren();
  const item = tree.getTreeItem(ref) as unknown as { label: string; description: string; contextValue: string };
  assert.equal(item.label, 'tiny SFT #1');
  assert.match(item.description, /^loss \d.* · finished · step 2\/2$/);
  assert.match(item.contextValue, /^rlhfRun\.finished.*\.hasModel/);
  tree.dispose();
  runs.dispose();
  logging.dispose();
});

test('a run whose loss climbs far above its start ends with a warning notification, not as plainly finished', async () => {
  const { startStage } = await import('../../src/commands/training');
  const { services, runs } = await trainingServices();
  const dir = path.join(workspace, 'climb');
  fs.mkdirSync(dir);
  fs.writeFileSync(
    path.join(dir, 'sft.jsonl'),
    ['cat', 'dog', 'cow', 'owl']
      .map((a) => JSON.stringify({ prompt: `What does a ${a} eat?`, completion: ` A ${a} eats.` }))
      .join('\n'),
  );
  const file = path.join(dir, 'climb.rlhf.json');
  const sft = {
    data: 'sft.jsonl',
    max_steps: 8,
    per_device_train_batch_size: 4,
    learning_rate: 10,
    warmup_steps: 0,
    logging_steps: 1,
    eval_fraction: 0,
  };
  fs.writeFileSync(
    file,
    JSON.stringify({
      name: 'climb',
      seed: 3,
      model: 'tiny',
      model_size: { n_layer: 1, n_embd: 32, n_head: 2, n_positions: 32 },
      runtime: { provider: 'cpu', threads: 1 },
      sft,
    }),
  );

  ui.reset();
  const run = (await startStage(services, 'sft', vscode.Uri.file(file) as never))!;
  const outcome = await run.process.outcome;
  assert.equal(outcome.status, 'finished', outcome.error);
  assert.match(outcome.warning ?? '', /^loss rose from/);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(ui.shown.at(-1)?.kind, 'warning');
  assert.match(
    ui.shown.at(-1)?.message ?? '',
    /climb SFT #\d+ finished, but loss rose from [\d.]+ \(first logged\) to/,
  );
  runs.dispose();
});

test('settings override the experiment runtime only when the user set them', async () => {
  const { runtimeOverrides } = await import('../../src/settings');
  delete workbench.settings['rlhf.threads'];
  assert.deepEqual(runtimeOverrides(), {});
  workbench.settings['rlhf.executionProvider'] = 'cpu';
  workbench.settings['rlhf.threads'] = 2;
  assert.deepEqual(runtimeOverrides(), { provider: 'cpu', threads: 2 });
  workbench.settings['rlhf.executionProvider'] = 'tpu';
  assert.deepEqual(runtimeOverrides(), { threads: 2 });
});

const unixOnly = { skip: process.platform === 'win32', timeout: 30_000 };

test('Stop Run signals no process a stale run.json names, and offers to kill one deaf to it', unixOnly, async () => {
  const { stopRun } = await import('../../src/commands/training');
  const { RunRegistry, liveProcess } = await import('../../src/runs/registry');
  const { exited, isRunning, startDeafToSigint, startStranger } = await import('../helpers/processes');
  const registry = new RunRegistry(path.join(workspace, 'stop-runs'));
  const processOptions = { entry: 'unused', stopTimeoutMs: 300 };
  const runs = { list: () => [], refresh() {} };
  const services = { supervisor: { find: () => undefined }, runs, processOptions } as never;

  const stranger = startStranger();
  const copied = registry.create({ name: 'copied', stage: 'sft', configFile: 'c' });
  registry.save(Object.assign(copied, { pid: stranger.pid }));
  ui.reset();
  await stopRun(services, { registry, record: copied });
  assert.deepEqual(
    ui.shown.map((s) => s.kind),
    ['warning'],
  );
  const stale = `its process ${stranger.pid} is gone or is another program, so it was not signalled`;
  assert.equal(ui.shown[0].message, `copied SFT #1 looks stale: ${stale}. It is now marked failed.`);
  assert.equal(isRunning(stranger), true);
  stranger.kill();

  const { child } = await startDeafToSigint();
  const deaf = registry.create({ name: 'deaf', stage: 'sft', configFile: 'c' });
  registry.save(Object.assign(deaf, liveProcess(child.pid)));
  for (const answer of [undefined, 'Force Stop']) {
    ui.reset();
    ui.answers.push(answer);
    await stopRun(services, { registry, record: deaf });
    assert.deepEqual(
      ui.shown.map((s) => [s.kind, s.items]),
      [['warning', ['Force Stop']]],
    );
    const message = `deaf SFT #2 did not stop within 0.3 s; its process ${child.pid} is still running.`;
    assert.ok(ui.shown[0].message.startsWith(message), ui.shown[0].message);
    if (!answer) assert.deepEqual([isRunning(child), registry.get(deaf.id)?.status], [true, 'running'], 'left running');
  }
  await exited(child);
  assert.equal(child.signalCode, 'SIGKILL');
  assert.equal(registry.get(deaf.id)?.status, 'failed');
});
