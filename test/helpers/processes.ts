/**
 * Real processes for the Stop Run tests: an unrelated program whose id a stale run.json may name,
 * and one that ignores SIGINT as a hung training process would.
 */
import { ChildProcess, spawn } from 'child_process';
import * as readline from 'readline';

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

/** Resolves once the process has exited (at once if it has). */
export function exited(child: ChildProcess): Promise<void> {
  return isRunning(child) ? new Promise((resolve) => child.once('exit', () => resolve())) : Promise.resolve();
}
