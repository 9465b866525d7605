/**
 * The training process: one per run, started by the extension host (src/runner/runner.ts) with an
 * IPC channel. It takes one `start`, `generate`, `test-rewards`, `merge` or `score-queue` command, streams events
 * back, stops after the current step on `stop`, on SIGINT or when the host goes away, and after a
 * failure sends an `error` event and exits non-zero. Every command is validated on arrival.
 */
import { ProcessEvent, RunEvent, parseCommand } from '../protocol/runner';
import * as inspector from 'inspector';
import { StageContext, runGeneration, runMerge, runRewardTest, stageRunners } from './stages';
import { runQueueMargins } from './queue-margins';

const LOG_TAIL = 30;

const stop = new AbortController();
const recentLogs: string[] = [];
let pending: Promise<void> = Promise.resolve();
let started = false;

/** Sends in order; `pending` settles once everything sent so far has left the process. */
function send(event: ProcessEvent): void {
  if (!process.connected) return;
  pending = pending.then(() => new Promise<void>((resolve) => process.send!(event, undefined, {}, () => resolve())));
}

function emit(event: RunEvent): void {
  if (event.type === 'log') {
    recentLogs.push(event.level === 'info' ? event.message : `${event.level}: ${event.message}`);
    if (recentLogs.length > LOG_TAIL) recentLogs.shift();
  }
  send(event);
}

/** Runs the one job of this process, then exits: 0 when it ended (finished or stopped), 1 on failure. */
async function run(job: () => Promise<void>): Promise<void> {
  try {
    await waitForDebugger();
    await job();
    await pending;
    process.exit(0);
  } catch (e) {
    fail((e as Error).message);
  }
}

/**
 * Started for debugging (Node's inspector is on): says where the inspector listens and waits until
 * a debugger attaches, so breakpoints in reward functions are set before they first run.
 */
async function waitForDebugger(): Promise<void> {
  const url = inspector.url();
  if (!url) return;
  emit({ type: 'debugger', url });
  await pending;
  inspector.waitForDebugger();
}

function fail(message: string): void {
  send({ type: 'error', message, logTail: [...recentLogs] });
  void pending.then(() => process.exit(1));
}

function onMessage(message: unknown): void {
  const parsed = parseCommand(message);
  if (!parsed.ok) {
    emit({ type: 'log', level: 'warn', message: `ignored an invalid command: ${parsed.error}` });
    return;
  }
  const command = parsed.value;
  if (command.type === 'stop') {
    stop.abort();
    return;
  }
  if (started) {
    emit({ type: 'log', level: 'warn', message: 'ignored a second start: this process runs one command' });
    return;
  }
  started = true;
  const context: StageContext = { emit, signal: stop.signal };
  if (command.type === 'generate') {
    void run(() => runGeneration(command, context));
  } else if (command.type === 'test-rewards') {
    void run(() => runRewardTest(command, context));
  } else if (command.type === 'merge') {
    void run(() => runMerge(command, context));
  } else if (command.type === 'score-queue') {
    void run(() => runQueueMargins(command, context));
  } else {
    const runStage = stageRunners[command.stage];
    void run(() => runStage(command, context));
  }
}

if (!process.send) {
  console.error('The training process is started by RLHF Studio in VS Code. In a terminal, use the rlhf CLI.');
  process.exit(2);
}
process.on('message', onMessage);
// The host went away (window closed, crash): stop as if asked, so the last steps are checkpointed.
process.on('disconnect', () => stop.abort());
// Another window's Stop Run (src/runs/registry.ts, stopElsewhere).
process.on('SIGINT', () => stop.abort());
