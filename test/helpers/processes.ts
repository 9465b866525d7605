/**
 * Real processes for the tests: the rlhf CLI; for the Stop Run tests, an unrelated program whose id
 * a stale run.json may name, and one that ignores SIGINT as a hung training process would.
 */
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import * as readline from 'readline';

const root = path.resolve(__dirname, '..', '..');

/** The rlhf CLI from the sources, run from `cwd`; `exit` resolves with its exit code and output. */
export function cli(cwd: string, ...args: string[]) {
  return cliIn({}, cwd, ...args);
}

/** The CLI in a locale (`locale`: LANG, LC_ALL…; default English whatever this machine's locale). */
export function cliIn(locale: NodeJS.ProcessEnv, cwd: string, ...args: string[]) {
  const env = { ...process.env, LC_ALL: undefined, LC_MESSAGES: undefined, LANG: 'C.UTF-8', ...locale };
  const child = spawn(
    process.execPath,
    ['--import', require.resolve('tsx'), path.join(root, 'src', 'cli.ts'), ...args],
    { cwd, env },
  );
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const exit = new Promise<{ code: number | null; output: string }>((resolve) =>
    child.on('close', (code) => resolve({ code, output })),
  );
  return { child, exit };
}

/** Any program that is not a training process. */
export function startStranger(): ChildProcess {
  return spawn('sleep', ['30'], { stdio: 'ignore' });
}

/** A node process that ignores SIGINT, once its handler is in place; `ignored` settles at the first SIGINT. */
export async function startDeafToSigint(): Promise<{ child: ChildProcess; ignored: Promise<void> }> {
  const script = "process.on('SIGINT', () => console.log('ignored')); console.log('ready'); setInterval(() => 0, 1e3);";
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = readline.createInterface({ input: child.stdout! });
  const line = (text: string) => new Promise<void>((resolve) => lines.on('line', (l) => l === text && resolve()));
  const ignored = line('ignored');
  await line('ready');
  return { child, ignored };
}

export function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/**
 * The process of a CLI run that trains: the CLI itself, or where it restarts itself with the training
 * malloc settings (glibc Linux), the child it started (read from /proc).
 */
export function trainingProcessOf(cli: ChildProcess): number {
  const children = `/proc/${cli.pid}/task/${cli.pid}/children`;
  const pids = fs.existsSync(children) ? fs.readFileSync(children, 'utf8').trim().split(/\s+/).filter(Boolean) : [];
  return pids.length ? Number(pids[0]) : cli.pid!;
}

/** Resolves once the process has exited (at once if it has). */
export function exited(child: ChildProcess): Promise<void> {
  return isRunning(child) ? new Promise((resolve) => child.once('exit', () => resolve())) : Promise.resolve();
}
