/**
 * A labeling session on real files in a temporary workspace, as the view provider makes one, with
 * what it posts, warns about and runs recorded.
 */
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { LabelingMode, QueueState, ToWebview } from '../../src/protocol/labeling';
import { LabelingSession, SessionHost } from '../../src/views/labeling/session';
import { tempDir } from './temp';

export interface Workspace {
  dir: string;
  experiment: string;
  queue: string;
  preferences: string;
}

/** A workspace whose queue holds `pairs` pairs p0, p1…, each with the fields `extra` gives it. */
export function workspace(pairs: number, extra: (i: number) => object = () => ({})): Workspace {
  const dir = tempDir('labeling');
  const experiment = path.join(dir, 'pets.rlhf.json');
  fs.writeFileSync(
    experiment,
    JSON.stringify({
      name: 'pets',
      model: 'tiny',
      comparisons: { prompts: 'prompts.jsonl', queue: 'queue.jsonl', preferences: 'prefs.jsonl' },
    }),
  );
  const lines = Array.from({ length: pairs }, (_, i) =>
    JSON.stringify({
      pair_id: `p${i}`,
      prompt: `Question ${i}?`,
      response_a: ` first ${i}`,
      response_b: ` second ${i}`,
      candidate_ids: { a: `c${i}-0`, b: `c${i}-1` },
      generation: {},
      ...extra(i),
    }),
  );
  fs.writeFileSync(path.join(dir, 'queue.jsonl'), lines.map((l) => `${l}\n`).join(''));
  return { dir, experiment, queue: path.join(dir, 'queue.jsonl'), preferences: path.join(dir, 'prefs.jsonl') };
}

/** Each workspace's remembered undo history, as VS Code's workspace state keeps it across reloads. */
const histories = new WeakMap<Workspace, Record<string, string[]>>();

interface OpenOptions {
  random?: () => number;
  onPost?: (m: ToWebview) => void;
  experiments?: string[];
  annotator?: string;
  otherWindow?: boolean;
  /** Whether the workspace is trusted, asked each time (default: trusted). */
  trusted?: () => boolean;
  checkRate?: number;
  now?: () => number;
  /** Pairwise or ranking at first (default: none remembered, so pairwise). */
  mode?: LabelingMode;
}

/** A session as the view provider makes one, recording what it posts and warns about. */
export function open(ws: Workspace, options: OpenOptions = {}) {
  const posted: ToWebview[] = [];
  let history = options.otherWindow ? undefined : histories.get(ws);
  const warnings: string[] = [];
  const commands: string[] = [];
  let selected: string | undefined;
  let mode = options.mode;
  const host: SessionHost = {
    post: (m) => {
      posted.push(m);
      options.onPost?.(m);
    },
    warn: (m) => warnings.push(m),
    runCommand: (c) => commands.push(c),
    findExperiments: async () =>
      (options.experiments ?? [ws.experiment]).map((file) => ({ file, workspaceFolder: ws.dir })),
    isTrusted: options.trusted ?? (() => true),
    selection: { get: () => selected, set: (key) => (selected = key) },
    history: {
      get: () => history,
      set: (value) => {
        history = structuredClone(value);
        if (!options.otherWindow) histories.set(ws, history);
      },
    },
    random: options.random,
    annotator: () => options.annotator,
    checkRate: () => options.checkRate ?? 0,
    now: options.now,
    mode: { get: () => mode, set: (m) => (mode = m) },
  };
  const session = new LabelingSession(host);
  const state = () => {
    const last = posted.filter((m) => m.type === 'state').at(-1);
    assert.ok(last && last.type === 'state' && last.state.kind === 'queue', 'a queue state was posted');
    return last.state as QueueState;
  };
  const results = () => posted.filter((m) => m.type === 'result');
  return { session, posted, warnings, commands, state, results };
}
