/**
 * Tells a run's process apart from any other process that has, or later gets, the same id: run.json
 * records when its process started and its command line, and a process id is trusted (shown as live,
 * signalled by Stop Run) only while the process with that id still has both. A run.json committed to
 * a repository, copied from another machine or left behind by a crash then names an unrelated
 * process at worst, which is never signalled.
 *
 * Linux reads /proc; macOS and the BSDs ask `ps`. Windows has no cheap equivalent, and Stop Run does
 * not signal there (it has no SIGINT), so there a run is live while any process has its id, as before.
 * No vscode import.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';

export interface ProcessIdentity {
  /** When the process started, as the system tells it (compared as is, never parsed as a date). */
  started: string;
  /** Its command line, arguments separated by spaces. */
  command: string;
}

/** Whether this system can tell processes with the same id apart. */
export const CAN_IDENTIFY_PROCESSES = process.platform !== 'win32';

/** The start time and command line of a running process; undefined if it is gone or cannot be read. */
export function readProcessIdentity(pid: number): ProcessIdentity | undefined {
  if (!CAN_IDENTIFY_PROCESSES) return undefined;
  try {
    return process.platform === 'linux' ? fromProc(pid) : fromPs(pid);
  } catch {
    return undefined;
  }
}

/** Whether `pid` is still the very process `identity` was read from. */
export function isSameProcess(pid: number, identity: ProcessIdentity | undefined): boolean {
  const live = identity && readProcessIdentity(pid);
  return !!live && live.started === identity.started && live.command === identity.command;
}

/**
 * Whether the process a run recorded still runs: that very process where processes can be told
 * apart, else (Windows) any process with its id.
 */
export function isRecordedProcessAlive(pid: number, identity: ProcessIdentity | undefined): boolean {
  return CAN_IDENTIFY_PROCESSES ? isSameProcess(pid, identity) : isProcessAlive(pid);
}

/** Signal 0 checks that a process exists without touching it (EPERM: it exists, as another user's). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * /proc/<pid>/stat field 22 is the start time in clock ticks since boot, so the boot's id makes it
 * unique across reboots. The fields are counted after the name's closing parenthesis (a name may
 * hold spaces). A zombie (state Z) or dying (X) process has exited already.
 */
function fromProc(pid: number): ProcessIdentity | undefined {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  if (fields[0] === 'Z' || fields[0] === 'X') return undefined;
  const boot = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  const command = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0$/, '').split('\0').join(' ');
  return { started: `${boot}/${fields[22 - 3]}`, command };
}

/** `lstart` is five words (`Tue Nov 24 20:39:16 2026`); `-ww` keeps the command line whole. */
function fromPs(pid: number): ProcessIdentity | undefined {
  const args = ['-ww', '-o', 'lstart=', '-o', 'command=', '-p', String(pid)];
  const line = execFileSync('ps', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  const m = /^(\S+\s+\S+\s+\S+\s+\S+\s+\S+)\s+(.*)$/.exec(line);
  return m ? { started: m[1], command: m[2] } : undefined;
}
