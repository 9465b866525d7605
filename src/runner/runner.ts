/**
 * The host's side of one training process: starts it with Node's IPC channel, validates what it
 * sends, keeps its last log lines, and turns however it ended (done, error, crash, kill) into one
 * outcome. No vscode import, so the process boundary is tested for real in plain Node.
 */
import { ChildProcess, fork } from 'child_process';
import { EventEmitter } from 'events';
import * as readline from 'readline';
import {
  GenerateCommand,
  MergeCommand,
  ProcessEvent,
  RunEvent,
  SampleRow,
  ScoreQueueCommand,
  StartCommand,
  TestRewardsCommand,
  parseEvent,
} from '../protocol/runner';
import { withTrainingMalloc } from '../util/training-malloc';

/** A command a training process runs. */
type JobCommand = StartCommand | GenerateCommand | TestRewardsCommand | MergeCommand | ScoreQueueCommand;

export interface ProcessOptions {
  /** The training-process entry: dist/train-process.js, or src/runner/train-process.ts under tsx in tests. */
  entry: string;
  /** Node flags for the child; never the host's own (VS Code's may hold inspector ports). */
  execArgv?: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** How long `stop()` waits for the checkpoint before killing the process. */
  stopTimeoutMs?: number;
}

/** How long a stop waits for the current step and its checkpoint, unless `stopTimeoutMs` says otherwise. */
export const STOP_TIMEOUT_MS = 60_000;

export interface ProcessOutcome {
  status: 'finished' | 'stopped' | 'failed';
  /** The last step the process reported. */
  step: number;
  error?: string;
  /** Something about a run that ended well that needs a look (its `done` event's warning). */
  warning?: string;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  logTail: string[];
}

export interface LogLine {
  level: 'info' | 'warn' | 'error';
  message: string;
}

const LOG_TAIL = 30;

export class TrainingProcess extends EventEmitter<{ event: [RunEvent]; log: [LogLine] }> {
  readonly pid: number | undefined;
  /** Settles once the process has exited and its output is read; never rejects. */
  readonly outcome: Promise<ProcessOutcome>;
  private readonly child: ChildProcess;
  private readonly logTail: string[] = [];
  private readonly stopTimeoutMs: number;
  private step = 0;
  private done?: Extract<RunEvent, { type: 'done' }>;
  private error?: string;
  private killedAfterTimeout = false;

  private constructor(command: JobCommand, options: ProcessOptions) {
    super();
    this.stopTimeoutMs = options.stopTimeoutMs ?? STOP_TIMEOUT_MS;
    // VS Code's Electron binary runs as plain Node with ELECTRON_RUN_AS_NODE; in Node it is ignored.
    this.child = fork(options.entry, [], {
      execPath: process.execPath,
      execArgv: options.execArgv ?? [],
      cwd: options.cwd,
      env: withTrainingMalloc({ ...process.env, ...options.env, ELECTRON_RUN_AS_NODE: '1' }),
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'advanced', // carries NaN and Infinity in metrics, which JSON would turn into null
    });
    this.pid = this.child.pid;
    this.outcome = new Promise((resolve) => {
      let spawnError: Error | undefined;
      this.child.on('error', (e) => (spawnError = e));
      this.child.on('close', (code, signal) => resolve(this.settle(code, signal, spawnError)));
    });
    this.child.on('message', (message) => this.receive(message));
    this.readLines(this.child.stdout!, 'info');
    this.readLines(this.child.stderr!, 'warn');
    this.child.send(command);
  }

  static start(command: JobCommand, options: ProcessOptions): TrainingProcess {
    return new TrainingProcess(command, options);
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /**
   * Asks for a stop after the current step (the trainer saves a checkpoint); kills the process if it
   * takes too long.
   */
  stop(): Promise<ProcessOutcome> {
    if (this.running && this.child.connected) this.child.send({ type: 'stop' });
    const timer = setTimeout(() => {
      if (!this.running) return;
      this.killedAfterTimeout = true;
      this.child.kill('SIGKILL');
    }, this.stopTimeoutMs);
    return this.outcome.finally(() => clearTimeout(timer));
  }

  /** Ends the process now, without a checkpoint. */
  kill(): void {
    if (this.running) this.child.kill('SIGKILL');
  }

  private receive(message: unknown): void {
    const parsed = parseEvent(message);
    if (!parsed.ok) {
      this.log('warn', `ignored an invalid message from the training process: ${parsed.error}`);
      return;
    }
    const event: ProcessEvent = parsed.value;
    switch (event.type) {
      case 'error':
        this.error = event.message;
        for (const line of event.logTail) this.remember(line);
        return;
      case 'log':
        this.remember(event.level === 'info' ? event.message : `${event.level}: ${event.message}`);
        break;
      case 'done':
        this.done = event;
        break;
      case 'progress':
      case 'metrics':
      case 'checkpoint':
        this.step = event.step;
        break;
      case 'samples':
      case 'debugger':
        break;
    }
    this.emit('event', event);
  }

  private settle(code: number | null, signal: NodeJS.Signals | null, spawnError?: Error): ProcessOutcome {
    const base = { step: this.done?.step ?? this.step, exitCode: code, signal, logTail: [...this.logTail] };
    if (spawnError)
      return { ...base, status: 'failed', error: `the training process could not start: ${spawnError.message}` };
    if (this.error) return { ...base, status: 'failed', error: this.error };
    if (this.done && code === 0)
      return { ...base, status: this.done.stopped ? 'stopped' : 'finished', warning: this.done.warning };
    const how = this.killedAfterTimeout
      ? `did not stop within ${this.stopTimeoutMs / 1000} s and was killed`
      : signal
        ? `was killed (${signal})`
        : `exited with code ${code}`;
    return { ...base, status: 'failed', error: `the training process ${how} before finishing` };
  }

  private readLines(stream: NodeJS.ReadableStream, level: LogLine['level']): void {
    readline.createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
      if (!line.trim()) return;
      this.remember(line);
      this.emit('log', { level, message: line });
    });
  }

  private log(level: LogLine['level'], message: string): void {
    this.remember(message);
    this.emit('log', { level, message });
  }

  private remember(line: string): void {
    this.logTail.push(line);
    if (this.logTail.length > LOG_TAIL) this.logTail.shift();
  }
}

/** Continues prompts with a model in a training process; `signal` ends it early. */
export function generate(
  command: Omit<GenerateCommand, 'type'>,
  options: ProcessOptions,
  signal?: AbortSignal,
): Promise<SampleRow[]> {
  return samplesOf({ type: 'generate', ...command }, options, 'generation', signal);
}

/** Runs a GRPO or RLOO section's reward functions on a few completions in a training process. */
export function testRewards(
  command: Omit<TestRewardsCommand, 'type'>,
  options: ProcessOptions,
  signal?: AbortSignal,
): Promise<SampleRow[]> {
  return samplesOf({ type: 'test-rewards', ...command }, options, 'the reward test', signal);
}

/** The rows of the one `samples` event a job answers with. */
async function samplesOf(
  command: GenerateCommand | TestRewardsCommand,
  options: ProcessOptions,
  what: string,
  signal?: AbortSignal,
): Promise<SampleRow[]> {
  const proc = TrainingProcess.start(command, options);
  let rows: SampleRow[] = [];
  proc.on('event', (e) => {
    if (e.type === 'samples') rows = e.rows;
  });
  const cancel = () => proc.kill();
  signal?.addEventListener('abort', cancel);
  const outcome = await proc.outcome;
  signal?.removeEventListener('abort', cancel);
  if (signal?.aborted) throw new Error(`${what} was cancelled`);
  if (outcome.status !== 'finished') throw new Error(outcome.error ?? `${what} ended without an answer`);
  return rows;
}

/** Merges a PEFT adapter folder into its base as a full model folder, in a training process. */
export async function mergeAdapter(command: Omit<MergeCommand, 'type'>, options: ProcessOptions): Promise<void> {
  const outcome = await TrainingProcess.start({ type: 'merge', ...command }, options).outcome;
  if (outcome.status !== 'finished') throw new Error(outcome.error ?? 'the merge ended without writing the model');
}

/** Scores a labeling queue's new pairs with a reward model into its margins cache, in a training process. */
export async function scoreQueue(
  command: Omit<ScoreQueueCommand, 'type'>,
  options: ProcessOptions,
  signal?: AbortSignal,
): Promise<void> {
  const proc = TrainingProcess.start({ type: 'score-queue', ...command }, options);
  const stop = () => void proc.stop();
  signal?.addEventListener('abort', stop);
  const outcome = await proc.outcome;
  signal?.removeEventListener('abort', stop);
  if (outcome.status === 'failed') throw new Error(outcome.error ?? 'scoring the queue ended without an answer');
}
