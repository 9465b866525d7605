/** Tiny experiments and the files the scenarios assert on. */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';

/** The repository's root. */
export const ROOT = path.resolve(__dirname, '..', '..');

/** A GPT-2 small enough that each stage takes seconds on a CI core. */
export const TINY_MODEL_SIZE = { n_layer: 1, n_embd: 32, n_head: 2, n_positions: 64 };

/** SFT settings that train the tiny model in a few seconds, with a checkpoint halfway. */
export function tinySft(maxSteps: number): Record<string, unknown> {
  const half = Math.max(1, Math.floor(maxSteps / 2));
  return {
    data: 'sft.jsonl',
    max_steps: maxSteps,
    max_length: 64,
    per_device_train_batch_size: 8,
    warmup_steps: 2,
    logging_steps: 5,
    eval_steps: half,
    save_steps: half,
    sample_prompts: [],
  };
}

/** Writes `<workspace>/<name>/<name>.rlhf.json` with the demo's data files beside it; returns the file. */
export function writeExperiment(workspace: string, name: string, sections: Record<string, unknown>): string {
  const dir = path.join(workspace, name);
  fs.mkdirSync(dir, { recursive: true });
  for (const file of ['sft.jsonl', 'prompts.jsonl'])
    fs.copyFileSync(path.join(ROOT, 'media', 'demo', file), path.join(dir, file));
  const file = path.join(dir, `${name}.rlhf.json`);
  fs.writeFileSync(
    file,
    `${JSON.stringify({ name, seed: 1, model: 'tiny', model_size: TINY_MODEL_SIZE, ...sections }, null, 2)}\n`,
  );
  return file;
}

/** A preference file whose second line breaks off in the middle of a string. */
export const MALFORMED_PREFERENCES = [
  JSON.stringify({ prompt: 'What does a cat eat?', chosen: ' Cats eat meat.', rejected: ' Cats eat rocks.' }),
  '{"prompt": "Where does a penguin live?", "chosen": " In Antarc',
  '',
].join('\n');

/** Polls `check` until it returns a value other than undefined/false; fails naming `what`. */
export async function eventually<T>(what: string, check: () => T | undefined | false, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

export interface RunOnDisk {
  dir: string;
  record: { id: string; name: string; stage: string; status: string; step: number; error?: string };
}

/** The runs recorded in the workspace's `.rlhf/runs/`, oldest first. */
export function runsOnDisk(workspace: string): RunOnDisk[] {
  const root = path.join(workspace, '.rlhf', 'runs');
  if (!fs.existsSync(root)) return [];
  return fs
    .readdirSync(root)
    .sort()
    .map((id) => path.join(root, id))
    .filter((dir) => fs.existsSync(path.join(dir, 'run.json')))
    .map((dir) => ({
      dir,
      record: JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8')) as RunOnDisk['record'],
    }));
}

/** Every file under `dir` with a hash of its bytes, to show later that nothing changed. */
export function snapshot(dir: string): Record<string, string> {
  const hashes: Record<string, string> = {};
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    hashes[path.relative(dir, file)] = crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
  }
  return hashes;
}
