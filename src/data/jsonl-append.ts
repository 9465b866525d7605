/**
 * Durable appends to a JSONL file that several processes may write at once (two VS Code windows
 * labeling into one file, a CLI run beside them).
 *
 * An append writes all its lines with one write call to a file opened for appending, and fsyncs
 * before it returns, so a caller that acknowledges after the call has its data on disk. Earlier
 * bytes are never rewritten: a crash mid-write can only leave a torn last line, and the next
 * append first ends that line, so it stays one isolated bad line that readers report.
 *
 * Writers take turns through `<file>.lock`, created exclusively ('wx') and holding the writer's
 * pid and host. A lock whose writer is gone (same host, pid not running) or that is older than
 * STALE_LOCK_MS (an append takes milliseconds) is abandoned, and so is one still empty after
 * EMPTY_LOCK_MS (its writer fills it in right after creating it). Breaking one needs
 * `<file>.lock.break`, held just long enough to check the lock again and remove it, so two
 * writers cannot both judge a lock abandoned and then one remove the other's fresh lock.
 * Readers take no lock; one may see an append in progress as an incomplete last line.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { setTimeout as sleep } from 'timers/promises';
import { syncDir } from '../util/files';
import { isPlainObject } from '../util/objects';

const STALE_LOCK_MS = 30_000;
const EMPTY_LOCK_MS = 500;
const LOCK_WAIT_MS = 2 * STALE_LOCK_MS;

/**
 * Appends one JSON line per value; resolves once they are on disk. `check` runs while the lock is
 * held, before the write: it may read the file and throw to append nothing.
 */
export async function appendJsonLines(file: string, values: readonly unknown[], check?: () => void): Promise<void> {
  const text = values.map((value) => `${JSON.stringify(value)}\n`).join('');
  const release = await acquireLock(file);
  try {
    check?.();
    appendDurably(file, text);
  } finally {
    release();
  }
}

function appendDurably(file: string, text: string): void {
  const isNew = !fs.existsSync(file);
  const fd = fs.openSync(file, 'a+');
  try {
    const bytes = Buffer.from(endsMidLine(fd) ? `\n${text}` : text);
    for (let done = 0; done < bytes.length;) done += fs.writeSync(fd, bytes, done);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  if (isNew) syncDir(path.dirname(path.resolve(file)));
}

/** Whether the last byte is not a newline, as a crash during an append leaves it. */
function endsMidLine(fd: number): boolean {
  const size = fs.fstatSync(fd).size;
  if (size === 0) return false;
  const last = Buffer.alloc(1);
  fs.readSync(fd, last, 0, 1, size - 1);
  return last[0] !== 0x0a;
}

/** Waits for `<file>.lock`; returns the function that releases it. */
async function acquireLock(file: string): Promise<() => void> {
  const lock = `${file}.lock`;
  const deadline = Date.now() + LOCK_WAIT_MS;
  while (!tryCreateLock(lock)) {
    breakIfAbandoned(lock);
    if (Date.now() > deadline) {
      throw new Error(
        `${file}: another process has held ${lock} for over ${LOCK_WAIT_MS / 1000} s; ` +
          'if no other RLHF Studio process is writing this file, delete the lock file',
      );
    }
    await sleep(1 + Math.random() * 4);
  }
  return () => fs.rmSync(lock, { force: true });
}

/** Creates `lock` naming this process; false when it already exists. */
function tryCreateLock(lock: string): boolean {
  try {
    fs.writeFileSync(lock, JSON.stringify({ pid: process.pid, host: os.hostname() }), { flag: 'wx' });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

function breakIfAbandoned(lock: string): void {
  const breaker = `${lock}.break`;
  if (!tryCreateLock(breaker)) {
    if (isAbandoned(breaker)) fs.rmSync(breaker, { force: true });
    return;
  }
  try {
    if (isAbandoned(lock)) fs.rmSync(lock, { force: true });
  } finally {
    fs.rmSync(breaker, { force: true });
  }
}

function isAbandoned(lock: string): boolean {
  let modified: number;
  let text: string;
  try {
    modified = fs.statSync(lock).mtimeMs;
    text = fs.readFileSync(lock, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  const age = Date.now() - modified;
  const owner = parseOwner(text);
  if (owner === undefined) return age > EMPTY_LOCK_MS;
  return age > STALE_LOCK_MS || (owner.host === os.hostname() && !isRunning(owner.pid));
}

/** The lock's writer; undefined while it is still being written, or if its writer died first. */
function parseOwner(text: string): { pid: number; host: string } | undefined {
  let owner: unknown;
  try {
    owner = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isPlainObject(owner) || !Number.isSafeInteger(owner.pid) || typeof owner.host !== 'string') return undefined;
  return { pid: owner.pid as number, host: owner.host };
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
