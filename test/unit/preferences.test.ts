import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'child_process';
import { setTimeout as sleep } from 'timers/promises';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  appendPreference,
  exportPreferences,
  importPreferences,
  NothingToUndoError,
  readPreferencePairs,
  readPreferences,
  undoPreference,
} from '../../src/data/preferences';
import { PreferenceRecord } from '../../src/data/preference-record';
import { Rng } from '../../src/util/rng';
import { tempDir } from '../helpers/temp';

const dir = tempDir('prefs');
let fileCount = 0;
const newFile = (name = 'prefs') => path.join(dir, `${name}-${++fileCount}.jsonl`);
const jsonLines = (values: unknown[]) => values.map((v) => `${JSON.stringify(v)}\n`).join('');

const user = (content: string) => ({ role: 'user' as const, content });
const assistant = (content: string) => ({ role: 'assistant' as const, content });

const RECORDS: PreferenceRecord[] = [
  {
    id: 'p1',
    label: 'a',
    prompt: 'What does a cat eat?',
    chosen: ' A cat eats fish.',
    rejected: ' Rocks.',
    rationale: 'true',
    annotator: 'ann',
    created_at: '2025-01-02T03:04:05.000Z',
    candidate_ids: { a: 'h-0', b: 'h-1' },
    generation: { model: 'm', seed: 3, temperature: 0.9, greedy: false, note: null },
  },
  {
    id: 'p2',
    label: 'b',
    prompt: [{ role: 'system', content: 'Be brief.' }, user('What does a dog eat?')],
    chosen: [assistant('Meat.')],
    rejected: [assistant('')],
    created_at: '2025-01-02T03:04:06Z',
  },
  { id: 'p3', label: 'tie', prompt: 'Where does a cow live?', response_a: ' On a farm.', response_b: ' In a field.' },
  {
    id: 'p4',
    label: 'skip',
    prompt: [user('狗怎么叫？')],
    response_a: [assistant('汪汪。')],
    response_b: [assistant('喵。')],
  },
  { label: 'both_bad', prompt: 'Hi', response_a: ' x', response_b: ' y' },
  { prompt: 'Imported?', chosen: ' Yes.', rejected: ' No.' },
];

test('preferences: every field and both TRL forms survive a round trip', async () => {
  const file = newFile();
  for (const r of RECORDS) await appendPreference(file, r);
  assert.deepEqual(readPreferences(file), { records: RECORDS, errors: [] });
  const first = JSON.parse(fs.readFileSync(file, 'utf8').split('\n')[0]);
  assert.deepEqual(Object.keys(first).slice(0, 5), ['id', 'label', 'prompt', 'chosen', 'rejected']);
});

test('preferences: null optional fields, unknown keys and TRL implicit prompts', () => {
  const file = newFile();
  fs.writeFileSync(
    file,
    jsonLines([
      { prompt: 'Q', chosen: ' A', rejected: ' B', rationale: null, label: null, score_chosen: 9 },
      { chosen: [user('Hi'), assistant('Hello!')], rejected: [user('Hi'), assistant('Go away.')] },
    ]),
  );
  assert.deepEqual(readPreferences(file), {
    records: [
      { prompt: 'Q', chosen: ' A', rejected: ' B' },
      { prompt: [user('Hi')], chosen: [assistant('Hello!')], rejected: [assistant('Go away.')] },
    ],
    errors: [],
  });
});

test('preferences: invalid records are reported with file:line and the field at fault', async () => {
  const file = newFile();
  fs.writeFileSync(
    file,
    jsonLines([
      { prompt: 'Q', chosen: ' A', rejected: ' B', label: 'c' },
      { prompt: 'Q', chosen: ' A', rejected: ' B', label: 'tie' },
      { prompt: 'Q', chosen: [assistant('A')], rejected: ' B' },
      { prompt: [user('Q')], chosen: [user('A')], rejected: [assistant('B')] },
      { chosen: 'Human: hi', rejected: 'Human: ho' },
      { prompt: 'Q', chosen: ' A', rejected: ' B', created_at: 'yesterday' },
      { prompt: 'Q', chosen: ' A', rejected: ' B', generation: { nested: { x: 1 } } },
      { undo: 5 },
      { prompt: 'Q', chosen: ' A', rejected: ' B' },
    ]),
  );
  const { records, errors } = readPreferences(file);
  assert.equal(records.length, 1);
  const expected = [
    /"label" must be one of/,
    /"chosen" does not belong in a record labeled "tie"/,
    /"chosen" must be a string/,
    /"chosen\[0\]\.role" must be "assistant"/,
    /format "hh"/,
    /"created_at" must be an ISO 8601 time/,
    /"generation\.nested"/,
    /"undo"/,
  ];
  assert.deepEqual(
    errors.map((e) => [e.file, e.line]),
    expected.map((_, i) => [file, i + 1]),
  );
  errors.forEach((e, i) => assert.match(e.message, expected[i]));
  await assert.rejects(
    appendPreference(file, { prompt: '', chosen: 'x', rejected: 'y' }),
    /not a valid preference record: field "prompt"/,
  );
});

const label = (id: string, chosen: string): PreferenceRecord => ({
  id,
  label: 'a',
  prompt: 'Q',
  chosen,
  rejected: ' no',
});

test('preferences: undo takes back the latest label, and repeated undos walk back', async () => {
  const file = newFile();
  for (const r of [label('x', ' 1'), label('y', ' 2'), label('x', ' 3')]) await appendPreference(file, r);
  await undoPreference(file, 'x');
  assert.deepEqual(
    readPreferences(file).records.map((r) => 'chosen' in r && r.chosen),
    [' 1', ' 2'],
  );
  await undoPreference(file, 'y');
  await undoPreference(file, 'x');
  assert.deepEqual(readPreferences(file).records, []);
  await appendPreference(file, label('x', ' 4'));
  await assert.rejects(
    undoPreference(file, 'z'),
    (e: Error) => e instanceof NothingToUndoError && /pair z has no label to undo/.test(e.message),
  );
  fs.appendFileSync(file, '{"undo": "z"}\n'); // by hand
  const { records, errors } = readPreferences(file);
  assert.deepEqual(records, [label('x', ' 4')]);
  assert.equal(errors.length, 1);
  assert.match(errors[0].message, /undo of "z" matches no earlier record/);
  assert.equal(errors[0].line, 8);
});

test('preferences: an undo with nothing to take back is refused; one already in a file changes nothing', async () => {
  const file = newFile();
  await appendPreference(file, label('x', ' 1'));
  await undoPreference(file, 'x');
  const written = fs.readFileSync(file, 'utf8');
  await assert.rejects(undoPreference(file, 'x'), NothingToUndoError);
  assert.equal(fs.readFileSync(file, 'utf8'), written, 'nothing is appended');

  fs.appendFileSync(file, '{"undo": "x"}\n'); // what a second undo of the same label used to write
  await appendPreference(file, label('x', ' 2'));
  assert.deepEqual(readPreferences(file), { records: [label('x', ' 2')], errors: [] });

  const outcomes = await Promise.allSettled([undoPreference(file, 'x'), undoPreference(file, 'x')]);
  assert.deepEqual(outcomes.map((o) => o.status).sort(), ['fulfilled', 'rejected'], 'of two undos at once, one wins');
  assert.deepEqual(readPreferences(file), { records: [], errors: [] });
});

test("preferences: pairs for the reward model keep each record's form, text or messages", async () => {
  const file = newFile();
  for (const r of RECORDS) await appendPreference(file, r);
  await undoPreference(file, 'p1');
  const { pairs, errors, skipped } = readPreferencePairs(file);
  assert.deepEqual(errors, []);
  assert.equal(skipped, 3);
  assert.deepEqual(pairs, [
    {
      prompt: [{ role: 'system', content: 'Be brief.' }, user('What does a dog eat?')],
      chosen: [assistant('Meat.')],
      rejected: [assistant('')],
    },
    { prompt: 'Imported?', chosen: ' Yes.', rejected: ' No.' },
  ]);
  const withTies = readPreferencePairs(file, { includeTies: true });
  assert.equal(withTies.skipped, 1);
  assert.deepEqual(
    withTies.pairs.filter((p) => p.tie).map((p) => [p.chosen, p.rejected]),
    [
      [' On a farm.', ' In a field.'],
      [' x', ' y'],
    ],
  );
});

test('preferences: HH-RLHF and TRL imports, and an export that reads back as the same pairs', async () => {
  const hh = newFile('hh');
  const opening = '\n\nHuman: What does a cat eat?\n\nAssistant: Fish.\n\nHuman: And a dog?\n\nAssistant:';
  fs.writeFileSync(
    hh,
    jsonLines([
      { chosen: `${opening} Meat.`, rejected: `${opening} Meatballs, mostly.` },
      { chosen: '\n\nHuman: Hi\n\nAssistant: Hello!', rejected: '\n\nHuman: Hi\n\nAssistant: Go away.' },
      { chosen: '\n\nHuman: Hi\n\nAssistant: Same.', rejected: '\n\nHuman: Hi\n\nAssistant: Same.' },
      { chosen: '\n\nHuman: A', rejected: '\n\nHuman: B' },
    ]),
  );
  const store = newFile('store');
  await appendPreference(store, RECORDS[2]);
  const fromHH = await importPreferences(hh, store, 'hh');
  assert.equal(fromHH.imported, 2);
  assert.deepEqual(
    fromHH.errors.map((e) => [e.line, /same transcript|share no opening/.test(e.message)]),
    [
      [3, true],
      [4, true],
    ],
  );
  const trl = newFile('trl');
  fs.writeFileSync(
    trl,
    jsonLines([RECORDS[0], { prompt: [user('Hi')], chosen: [assistant('Hello!')], rejected: [assistant('Go.')] }]),
  );
  assert.deepEqual(await importPreferences(trl, store, 'trl'), { imported: 2, errors: [] });

  const { records } = readPreferences(store);
  assert.deepEqual(records.slice(1, 3), [
    { prompt: opening, chosen: ' Meat.', rejected: ' Meatballs, mostly.' },
    { prompt: '\n\nHuman: Hi\n\nAssistant:', chosen: ' Hello!', rejected: ' Go away.' },
  ]);
  assert.deepEqual(records.slice(3), [
    RECORDS[0],
    { prompt: [user('Hi')], chosen: [assistant('Hello!')], rejected: [assistant('Go.')] },
  ]);

  const exported = newFile('export');
  assert.deepEqual(exportPreferences(store, exported), { exported: 4, skipped: 1, errors: [] });
  for (const line of fs.readFileSync(exported, 'utf8').trim().split('\n')) {
    assert.deepEqual(Object.keys(JSON.parse(line)), ['prompt', 'chosen', 'rejected']);
  }
  assert.deepEqual(readPreferencePairs(exported).pairs, readPreferencePairs(store).pairs);
});

test('preferences: a torn last line is reported, and the next append starts a fresh line', async () => {
  const file = newFile();
  await appendPreference(file, RECORDS[0]);
  fs.appendFileSync(file, '{"id": "torn", "prompt": "Q", "cho');
  const torn = readPreferences(file);
  assert.equal(torn.records.length, 1);
  assert.equal(torn.errors.length, 1);
  assert.equal(torn.errors[0].line, 2);
  assert.match(torn.errors[0].message, /last line is incomplete/);
  await appendPreference(file, RECORDS[1]);
  const after = readPreferences(file);
  assert.deepEqual(after.records, [RECORDS[0], RECORDS[1]]);
  assert.deepEqual(
    after.errors.map((e) => e.line),
    [2],
  );
});

test('preferences: an abandoned lock (dead writer, or left empty) does not block appends', async () => {
  const file = newFile();
  const dead = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => dead.on('exit', resolve));
  fs.writeFileSync(`${file}.lock`, JSON.stringify({ pid: dead.pid, host: os.hostname() }));
  await appendPreference(file, RECORDS[0]);
  fs.writeFileSync(`${file}.lock`, '');
  const old = new Date(Date.now() - 2_000);
  fs.utimesSync(`${file}.lock`, old, old);
  await appendPreference(file, RECORDS[1]);
  assert.equal(readPreferences(file).records.length, 2);
  assert.equal(fs.existsSync(`${file}.lock`), false);
});

const WRITER = path.join(__dirname, '..', 'helpers', 'append-labels.ts');

/** A labeling process; `acks` fills with the ids it has acknowledged. */
function startWriter(file: string, prefix: string, count: number, wait = false) {
  const child = spawn(
    process.execPath,
    ['--require', 'tsx/cjs', WRITER, file, prefix, String(count), ...(wait ? ['--wait'] : [])],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const acks: string[] = [];
  let partial = '';
  const listeners: (() => void)[] = [];
  child.stdout!.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop()!;
    acks.push(...lines);
    listeners.forEach((f) => f());
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const until = (ready: () => boolean) =>
    new Promise<void>((resolve) => {
      if (ready()) return resolve();
      listeners.push(() => ready() && resolve());
    });
  return { child, acks, exited, until };
}

test('preferences: every acknowledged label survives SIGKILL at random points', async () => {
  const file = newFile('crash');
  const rng = new Rng(11);
  const acknowledged: string[] = [];
  // A torn line is allowed only as the last line; the next append leaves it isolated mid-file.
  const tornLines = new Set<number>();
  let kills = 0;
  for (let round = 0; acknowledged.length < 1000 || kills < 4; round++) {
    const writer = startWriter(file, `r${round}`, 1000);
    const killAfter = 50 + rng.int(300);
    await writer.until(() => writer.acks.length >= killAfter);
    await sleep(rng.next() * 2);
    writer.child.kill('SIGKILL');
    await writer.exited;
    kills++;
    acknowledged.push(...writer.acks);

    const { records, errors } = readPreferences(file);
    const lineCount = fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '').length;
    for (const e of errors) {
      assert.ok(tornLines.has(e.line!) || (e.line === lineCount && /incomplete/.test(e.message)), JSON.stringify(e));
      tornLines.add(e.line!);
    }
    const ids = records.map((r) => r.id);
    assert.equal(new Set(ids).size, ids.length, 'a label was written twice');
    const stored = new Set(ids);
    const lost = acknowledged.filter((id) => !stored.has(id));
    assert.deepEqual(lost, [], `acknowledged but missing after kill ${kills}`);
  }
  assert.ok(acknowledged.length >= 1000);
});

test('preferences: two processes appending at once do not interleave or corrupt lines', async () => {
  const file = newFile('two');
  const prefixes = ['w1', 'w2'];
  const writers = prefixes.map((prefix) => startWriter(file, prefix, 300, true));
  await Promise.all(writers.map((w) => w.until(() => w.acks.includes('ready'))));
  writers.forEach((w) => w.child.stdin!.write('go\n'));
  assert.deepEqual(await Promise.all(writers.map((w) => w.exited)), [0, 0]);
  const { records, errors } = readPreferences(file);
  assert.deepEqual(errors, []);
  assert.equal(records.length, 600);
  prefixes.forEach((prefix, k) => {
    const ids = records.filter((r) => r.annotator === prefix).map((r) => r.id);
    assert.deepEqual(ids, writers[k].acks.slice(1), `${prefix}'s labels, in the order it acknowledged them`);
  });
  const switches = records.filter((r, i) => i > 0 && r.annotator !== records[i - 1].annotator).length;
  assert.ok(switches > 2, `the writers barely overlapped (${switches} switches)`);
});

/** A valid line, damaged in one of several ways. */
function damageLine(line: string, rng: Rng): Buffer {
  const record = JSON.parse(line) as Record<string, unknown>;
  const keys = Object.keys(record);
  const key = keys[rng.int(keys.length)];
  const junk = [null, 7, true, 'text', [], {}, [1, 'a'], { role: 'user' }, -0.5, ''];
  switch (rng.int(6)) {
    case 0: {
      const bytes = Buffer.from(line);
      for (let k = 0; k < 1 + rng.int(4); k++) bytes[rng.int(bytes.length)] = 11 + rng.int(245); // never a newline
      return bytes;
    }
    case 1:
      return Buffer.from(JSON.stringify({ ...record, [key]: junk[rng.int(junk.length)] }));
    case 2:
      delete record[key];
      return Buffer.from(JSON.stringify(record));
    case 3:
      delete record[key];
      record[key] = 0; // last, so the nesting below replaces its value
      return Buffer.from(JSON.stringify(record).replace(/0}$/, `${'['.repeat(100_000)}${']'.repeat(100_000)}}`));
    case 4:
      return Buffer.from(JSON.stringify({ ...record, [key]: 'x'.repeat(3_000_000) }));
    default:
      return Buffer.from(line).subarray(0, rng.int(line.length));
  }
}

test('preferences: fuzzed files give file:line errors and never a crash', () => {
  const base = jsonLines(RECORDS).trim().split('\n');
  const rng = new Rng(5);
  const file = newFile('fuzz');
  for (let trial = 0; trial < 120; trial++) {
    const lines: Buffer[] = base.map((line) => Buffer.from(line));
    const damaged = rng.int(lines.length);
    lines[damaged] = damageLine(base[damaged], rng);
    const whole = Buffer.concat(lines.flatMap((line) => [line, Buffer.from('\n')]));
    // Now and then also cut the file short, as a crash mid-write would.
    const bytes = trial % 4 === 0 ? whole.subarray(0, rng.int(whole.length)) : whole;
    fs.writeFileSync(file, bytes);
    const lineCount = bytes.toString('latin1').split('\n').length;
    const { records, errors } = readPreferences(file);
    for (const e of errors) {
      assert.equal(e.file, file);
      assert.ok(e.line! >= 1 && e.line! <= lineCount && e.message.length > 0, JSON.stringify(e));
    }
    assert.ok(errors.length <= 2, JSON.stringify(errors));
    assert.ok(
      records.length >= Math.min(lineCount - 1, base.length) - 2,
      `${records.length} records of ${lineCount} lines`,
    );
    readPreferencePairs(file, { includeTies: true });
  }
  const noise = Buffer.from(Array.from({ length: 20_000 }, () => rng.int(256)));
  fs.writeFileSync(file, noise);
  const { errors } = readPreferences(file);
  assert.ok(errors.length > 0 && errors.every((e) => e.file === file && e.line! >= 1));
});
