/**
 * The host ⇄ training-process boundary, for real: the supervisor starts the actual training entry
 * (under tsx) on a tiny SFT config, and the registry is read back from disk as a new window would.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { loadCheckpoint } from '../../src/model/checkpoint';
import { RunEvent, parseCommand, parseEvent } from '../../src/protocol/runner';
import { LiveRun, RunSupervisor } from '../../src/runner/supervisor';
import { RunRecord, RunRegistry } from '../../src/runs/registry';
import { cli } from '../helpers/processes';
import { tempDir } from '../helpers/temp';

const root = path.resolve(__dirname, '..', '..');
const dir = tempDir('runner');
const data = path.join(dir, 'sft.jsonl');
fs.writeFileSync(
  data,
  ['cat', 'dog', 'cow', 'bird', 'fox', 'owl']
    .map((a) => JSON.stringify({ prompt: `What does a ${a} say?`, completion: ` A ${a} says hi.` }))
    .join('\n'),
);

function writeConfig(name: string, maxSteps: number): string {
  const file = path.join(dir, `${name}.rlhf.json`);
  fs.writeFileSync(
    file,
    JSON.stringify({
      name,
      seed: 1,
      model: 'tiny',
      model_size: { n_layer: 1, n_embd: 32, n_head: 2, n_positions: 32 },
      runtime: { provider: 'cpu', threads: 1 },
      sft: {
        data: 'sft.jsonl',
        max_steps: maxSteps,
        per_device_train_batch_size: 2,
        warmup_steps: 1,
        logging_steps: 1,
        eval_steps: 1000,
        save_steps: 3,
        eval_fraction: 0,
      },
    }),
  );
  return file;
}

const supervisor = new RunSupervisor({
  entry: path.join(root, 'src', 'runner', 'train-process.ts'),
  execArgv: ['--import', 'tsx'],
  cwd: root,
  stopTimeoutMs: 20_000,
});
const registry = new RunRegistry(path.join(dir, 'runs'));

function eventsOf(run: LiveRun): RunEvent[] {
  const events: RunEvent[] = [];
  run.process.on('event', (e) => events.push(e));
  return events;
}

/** Resolves at the first progress event at or past `step`. */
function reach(run: LiveRun, step: number): Promise<void> {
  return new Promise((resolve) => run.process.on('event', (e) => e.type === 'progress' && e.step >= step && resolve()));
}

const metricSteps = (id: string, runs = registry) =>
  fs
    .readFileSync(path.join(runs.dir(id), 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((r) => 'loss' in r)
    .map((r) => r.step);

test('protocol: malformed commands and events are rejected on arrival', () => {
  const start = {
    type: 'start',
    stage: 'sft',
    configFile: 'a.rlhf.json',
    workspaceFolder: '/work',
    outputDir: '/tmp/run',
  };
  assert.equal(parseCommand(start).ok, true);
  assert.equal(parseCommand({ type: 'stop' }).ok, true);
  for (const bad of [
    null,
    'stop',
    {},
    { type: 'launch' },
    { ...start, stage: 'kto' },
    { ...start, configFile: '' },
    { ...start, workspaceFolder: undefined },
    { ...start, workspaceFolder: '' },
    { ...start, outputDir: 3 },
    { ...start, runtime: { provider: 'tpu' } },
    {
      type: 'generate',
      model: 'm',
      prompts: [],
      sampling: { maxNewTokens: 1, temperature: 0, topK: 0, topP: 1 },
      seed: 0,
    },
  ]) {
    const parsed = parseCommand(bad);
    assert.equal(parsed.ok, false, JSON.stringify(bad));
  }
  const bad = parseCommand({ ...start, stage: 'kto' });
  assert.ok(!bad.ok && /stage/.test(bad.error), 'the error names the field');

  assert.equal(parseEvent({ type: 'metrics', stage: 'sft', step: 3, values: { loss: NaN } }).ok, true);
  assert.equal(parseEvent({ type: 'error', message: 'boom', logTail: ['a'] }).ok, true);
  assert.equal(
    parseEvent({ type: 'done', stage: 'sft', step: 1, outputDir: '/r', stopped: false, warning: 'loss rose' }).ok,
    true,
  );
  for (const e of [
    { type: 'progress', stage: 'sft', step: -1, total: 3 },
    { type: 'done', stage: 'sft', step: 1 },
    { type: 'done', stage: 'sft', step: 1, outputDir: '/r', stopped: false, warning: 3 },
    { type: 'log', level: 'debug', message: 'x' },
    { type: 'metrics', stage: 'sft', step: 1, values: { loss: '1' } },
    { type: 'error', message: 'no tail' },
  ]) {
    assert.equal(parseEvent(e).ok, false, JSON.stringify(e));
  }
});

test('runner: a run streams events to done and the registry shows it finished', async () => {
  const run = supervisor.start({
    stage: 'sft',
    configFile: writeConfig('straight', 4),
    workspaceFolder: dir,
    registry,
  });
  const events = eventsOf(run);
  assert.equal(registry.get(run.record.id)?.status, 'running');
  const outcome = await run.process.outcome;
  assert.equal(outcome.status, 'finished', outcome.error);
  assert.deepEqual(
    events.filter((e) => e.type === 'progress').map((e) => e.step),
    [1, 2, 3, 4],
  );
  assert.ok(events.some((e) => e.type === 'metrics' && e.values.loss > 0));
  assert.ok(events.some((e) => e.type === 'done' && !e.stopped));
  await new Promise((r) => setImmediate(r));
  const record = registry.list().find((r) => r.id === run.record.id)!;
  assert.equal(record.status, 'finished');
  assert.equal(record.step, 4);
  assert.equal(record.pid, undefined);
  assert.ok(record.metrics.loss! > 0);
  assert.ok(registry.modelDir(record.id));
  assert.equal(supervisor.runs().length, 0);
});

test('runner: a training process killed mid-run is reported with its last log lines, and the run resumes', async () => {
  const run = supervisor.start({ stage: 'sft', configFile: writeConfig('crash', 12), workspaceFolder: dir, registry });
  await reach(run, 8); // checkpoint-6 is on disk by now
  process.kill(run.process.pid!, 'SIGKILL');
  const outcome = await run.process.outcome;
  assert.equal(outcome.status, 'failed');
  assert.match(outcome.error!, /killed \(SIGKILL\)/);
  assert.ok(
    outcome.logTail.some((l) => /SFT on \d+ examples/.test(l)),
    outcome.logTail.join('\n'),
  );
  await new Promise((r) => setImmediate(r));

  const record = new RunRegistry(registry.root).get(run.record.id)!;
  assert.equal(record.status, 'failed');
  assert.match(record.error!, /SIGKILL/);
  assert.ok(record.logTail?.length);
  assert.equal(registry.latestCheckpoint(record)?.step, 6);

  const resumed = supervisor.resume(registry, record.id, dir);
  assert.equal(resumed.record.resumedFrom, registry.latestCheckpoint(record)!.path);
  const events = eventsOf(resumed);
  assert.equal((await resumed.process.outcome).status, 'finished');
  assert.equal(events.find((e) => e.type === 'progress')?.step, 7);
  assert.equal(registry.get(record.id)?.status, 'finished');
  assert.deepEqual(
    metricSteps(record.id),
    [...Array(12).keys()].map((i) => i + 1),
    'metrics.jsonl reads as one run',
  );
});

test('runner: Resume Run skips a checkpoint a kill left incomplete, warning in the log, and goes on from the one before', async () => {
  const record = registry.create({ name: 'cut', stage: 'ppo', configFile: path.join(dir, 'absent.rlhf.json') });
  registry.save(Object.assign(record, { status: 'failed' }));
  const at = (name: string) => path.join(registry.dir(record.id), name);
  for (const model of ['policy', 'value']) {
    fs.mkdirSync(path.join(at('checkpoint-4'), model), { recursive: true });
    for (const file of ['config.json', 'model.safetensors'])
      fs.writeFileSync(path.join(at('checkpoint-4'), model, file), '');
  }
  fs.mkdirSync(path.join(at('checkpoint-6'), 'policy.partial'), { recursive: true });

  const warnings: string[] = [];
  const onLog = (_: LiveRun, line: { level: string; message: string }) =>
    line.level === 'warn' && warnings.push(line.message);
  supervisor.on('log', onLog);
  const run = supervisor.resume(registry, record.id, dir);
  supervisor.off('log', onLog);
  assert.equal(run.record.resumedFrom, at('checkpoint-4'));
  assert.deepEqual(
    warnings.map(
      (w) => w.startsWith(`skipped ${at('checkpoint-6')}: incomplete`) && w.endsWith('(resuming from checkpoint-4)'),
    ),
    [true],
    warnings.join('\n'),
  );
  assert.match(
    (await run.process.outcome).error!,
    /absent\.rlhf\.json/,
    'the process took the resume and went on to read its config',
  );

  fs.rmSync(at('checkpoint-4'), { recursive: true });
  assert.throws(
    () => supervisor.resume(registry, record.id, dir),
    /saved no complete checkpoint to resume from \(skipped .*checkpoint-6: incomplete/,
  );
});

test('runner: stop ends the run after a step with a checkpoint, recorded as stopped', async () => {
  const run = supervisor.start({ stage: 'sft', configFile: writeConfig('stop', 500), workspaceFolder: dir, registry });
  await reach(run, 2);
  const outcome = await supervisor.stop(run);
  assert.equal(outcome.status, 'stopped', outcome.error);
  const record = registry.get(run.record.id)!;
  assert.equal(record.status, 'stopped');
  const checkpoint = registry.latestCheckpoint(record)!;
  assert.equal(checkpoint.step, outcome.step);
  assert.equal(loadCheckpoint(checkpoint.path).trainerState?.step, outcome.step);
});

test('runner: a bad config fails with the reason, not a crash', async () => {
  const file = path.join(dir, 'bad.rlhf.json');
  fs.writeFileSync(file, JSON.stringify({ name: 'bad', sft: { data: 'sft.jsonl', max_steps: -1 } }));
  const run = supervisor.start({ stage: 'sft', configFile: file, workspaceFolder: dir, registry });
  const outcome = await run.process.outcome;
  assert.equal(outcome.status, 'failed');
  assert.match(outcome.error!, /sft\.max_steps/);
  assert.equal(outcome.exitCode, 1);
  assert.equal(registry.get(run.record.id)?.status, 'failed');

  const broken = path.join(dir, 'broken.rlhf.json');
  fs.writeFileSync(broken, '{"name": ');
  const unreadable = supervisor.start({ stage: 'sft', configFile: broken, workspaceFolder: dir, registry });
  assert.equal(unreadable.record.name, 'broken', 'a config that is not JSON names its run after the file');
  assert.match((await unreadable.process.outcome).error!, /broken\.rlhf\.json: not valid JSON/);
  assert.equal(fs.readFileSync(broken, 'utf8'), '{"name": ');

  const otherFolder = fs.mkdtempSync(path.join(dir, 'other-folder-'));
  const elsewhere = supervisor.start({ stage: 'sft', configFile: file, workspaceFolder: otherFolder, registry });
  assert.equal(
    (await elsewhere.process.outcome).error,
    `${file}: the experiment file is outside the workspace folder ${otherFolder}`,
  );
});

test("runner: Generate Comparisons samples from the experiment's newest finished SFT run into its queue", async () => {
  const file = writeConfig('pipeline', 2);
  const config = JSON.parse(fs.readFileSync(file, 'utf8'));
  fs.writeFileSync(
    path.join(dir, 'prompts.jsonl'),
    ['cat', 'dog', 'cow'].map((a) => JSON.stringify({ prompt: `What does a ${a} eat?` })).join('\n'),
  );
  config.comparisons = {
    prompts: 'prompts.jsonl',
    queue: 'queue.jsonl',
    num_candidates: 3,
    max_new_tokens: 6,
    temperature: 1.5,
  };
  fs.writeFileSync(file, JSON.stringify(config));

  const sft = supervisor.start({ stage: 'sft', configFile: file, workspaceFolder: dir, registry });
  assert.equal((await sft.process.outcome).status, 'finished');
  await new Promise((r) => setImmediate(r));

  const run = supervisor.start({ stage: 'comparisons', configFile: file, workspaceFolder: dir, registry });
  const events = eventsOf(run);
  const outcome = await run.process.outcome;
  assert.equal(outcome.status, 'finished', outcome.error);
  assert.equal(run.record.models?.sft, registry.modelDir(sft.record.id));
  assert.ok(
    events.some((e) => e.type === 'log' && e.message.includes(registry.modelDir(sft.record.id)!)),
    'says which model it samples from',
  );
  assert.deepEqual(
    events.filter((e) => e.type === 'progress').map((e) => e.step),
    [1, 2, 3],
  );

  const { readQueue } = await import('../../src/data/queue');
  const { pairs, errors } = readQueue(path.join(dir, 'queue.jsonl'));
  assert.deepEqual(errors, []);
  assert.ok(pairs.length > 0 && pairs.length <= 9, `${pairs.length} pairs`);
  assert.ok(pairs.every((p) => p.response_a !== p.response_b));
  assert.equal(registry.get(run.record.id)?.status, 'finished');
});

test('runner: Stop Run in another window stops a run after its step, with a checkpoint', async () => {
  const run = supervisor.start({
    stage: 'sft',
    configFile: writeConfig('elsewhere', 500),
    workspaceFolder: dir,
    registry,
  });
  await reach(run, 2);
  const wait = { timeoutMs: 20_000, pollMs: 50 };
  const { result, record } = await new RunRegistry(registry.root).stopElsewhere(run.record.id, wait);
  assert.deepEqual([result, record?.status], ['ended', 'stopped']);
  const outcome = await run.process.outcome;
  assert.equal(outcome.status, 'stopped', outcome.error);
  assert.equal(registry.latestCheckpoint(run.record)?.step, outcome.step);
});

test("CLI: its runs are recorded in the runs folder as VS Code's are, pick up earlier models, and stop on Stop Run", async () => {
  const workspace = fs.mkdtempSync(path.join(dir, 'cli-'));
  const runs = new RunRegistry(path.join(workspace, '.rlhf', 'runs'));
  fs.copyFileSync(data, path.join(workspace, 'sft.jsonl'));
  const file = path.join(workspace, 'cli.rlhf.json');
  const config = JSON.parse(fs.readFileSync(writeConfig('cli', 2), 'utf8'));
  config.comparisons = { prompts: 'prompts.jsonl', queue: 'cli-queue.jsonl', num_candidates: 2, max_new_tokens: 4 };
  fs.writeFileSync(path.join(workspace, 'prompts.jsonl'), JSON.stringify({ prompt: 'What does a cat eat?' }));
  fs.writeFileSync(file, JSON.stringify(config));

  // Run from the workspace folder, or from anywhere with --workspace.
  const sft = await cli(dir, 'sft', file, '--workspace', workspace).exit;
  assert.equal(sft.code, 0, sft.output);
  const [sftRun] = runs.list();
  assert.deepEqual(
    [sftRun.stage, sftRun.status, sftRun.step, sftRun.configFile, sftRun.pid],
    ['sft', 'finished', 2, file, undefined],
  );
  assert.ok(sftRun.metrics.loss! > 0);

  const comparisons = await cli(workspace, 'comparisons', file).exit;
  assert.equal(comparisons.code, 0, comparisons.output);
  const modelDir = runs.modelDir(sftRun.id)!;
  assert.equal(runs.list()[0].models?.sft, modelDir);
  assert.ok(comparisons.output.includes(`sampling from the SFT model: ${modelDir}`), comparisons.output);

  const rm = await cli(workspace, 'rm', file).exit;
  assert.equal(rm.code, 1);
  assert.deepEqual([runs.list()[0].stage, runs.list()[0].status], ['rm', 'failed']);
  assert.match(runs.list()[0].error!, /"rm" section/);

  const long = cli(workspace, 'sft', file, '--steps', '500');
  let exited = false;
  void long.exit.then(() => (exited = true));
  let running: RunRecord | undefined;
  while (!exited && !(running = runs.list().find((r) => r.status === 'running' && r.step >= 2)))
    await new Promise((r) => setTimeout(r, 50));
  if (!running) assert.fail(`the run never showed as running:\n${(await long.exit).output}`);
  // The CLI process, or where glibc takes the training malloc settings, the one it restarted with them.
  assert.ok([running.pid, parentPid(running.pid!)].includes(long.child.pid), `run.json names pid ${running.pid}`);
  assert.match(running.pidIdentity!.command, /cli\.ts sft /, 'run.json tells the CLI process apart from any other');
  const stopped = await runs.stopElsewhere(running.id, { timeoutMs: 20_000, pollMs: 50 });
  const { code, output } = await long.exit;
  assert.deepEqual([stopped.result, stopped.record?.status], ['ended', 'stopped'], output);
  assert.equal(code, 0, output);
  const checkpoint = runs.latestCheckpoint(running)!;
  assert.equal(checkpoint.step, runs.get(running.id)?.step);

  const count = runs.list().length;
  const wrongStage = await cli(workspace, 'rm', file, '--resume', checkpoint.path).exit;
  assert.equal(wrongStage.code, 1);
  assert.match(wrongStage.output, /is a checkpoint of sft run .*; resume it with "rlhf sft"/);
  const resumed = await cli(workspace, 'sft', file, '--resume', checkpoint.path, '--steps', String(checkpoint.step + 1))
    .exit;
  assert.equal(resumed.code, 0, resumed.output);
  assert.equal(runs.list().length, count, 'the resume goes on in the run it resumes, not a new one');
  const record = runs.get(running.id)!;
  assert.deepEqual(
    [record.status, record.step, record.resumedFrom],
    ['finished', checkpoint.step + 1, checkpoint.path],
  );
  assert.ok(metricSteps(running.id, runs).includes(checkpoint.step + 1), 'its metrics go on in the same folder');
});

test('CLI: an experiment outside the workspace folder, or naming files outside it, is refused before a run folder exists', async () => {
  const workspace = fs.mkdtempSync(path.join(dir, 'cli-refused-'));
  const outsideConfig = writeConfig('outside', 2);
  const elsewhere = await cli(workspace, 'sft', outsideConfig).exit;
  assert.equal(elsewhere.code, 1);
  assert.match(
    elsewhere.output,
    new RegExp(
      `${outsideConfig} is outside the current directory \\(${workspace}\\): run rlhf in a folder that holds the experiment, or name one with --workspace`,
    ),
  );
  const named = await cli(dir, 'sft', outsideConfig, '--workspace', workspace).exit;
  assert.match(named.output, /is outside the --workspace folder/);

  const escaping = path.join(workspace, 'escaping.rlhf.json');
  fs.writeFileSync(escaping, JSON.stringify({ name: 'escaping', sft: { data: '../sft.jsonl' } }));
  const refused = await cli(workspace, 'sft', escaping).exit;
  assert.equal(refused.code, 1);
  assert.match(
    refused.output,
    new RegExp(`${escaping}: sft\\.data: ${data} is outside the workspace folder ${workspace}`),
  );
  assert.equal(fs.existsSync(path.join(workspace, '.rlhf')), false, 'no run was recorded');
});

/** The parent of process `pid`, from /proc (undefined where there is none). */
function parentPid(pid: number): number | undefined {
  const stat = fs.existsSync(`/proc/${pid}/stat`) ? fs.readFileSync(`/proc/${pid}/stat`, 'utf8') : '';
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return stat ? Number(fields[1]) : undefined;
}
