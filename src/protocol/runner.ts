/**
 * Events a training run emits (CLI: printed; extension: streamed from the training process).
 * Metric names follow TRL where one exists.
 */

export type Stage = 'sft' | 'rm' | 'ppo' | 'generate';

export type RunEvent =
  | { type: 'log'; level: 'info' | 'warn' | 'error'; message: string }
  | { type: 'progress'; stage: Stage; step: number; total: number; message?: string }
  | { type: 'metrics'; stage: Stage; step: number; values: Record<string, number> }
  | { type: 'samples'; stage: Stage; step: number; rows: SampleRow[] }
  | { type: 'checkpoint'; stage: Stage; step: number; path: string }
  | { type: 'done'; stage: Stage; step: number; outputDir: string; stopped: boolean };

export interface SampleRow {
  prompt: string;
  response: string;
  score?: number;
  kl?: number;
}

export type EmitEvent = (event: RunEvent) => void;
