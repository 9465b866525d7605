/** Learning-rate schedules, as functions of the 1-based step (the host feeds lr to the step graph). */

export type SchedulerType = 'cosine' | 'linear' | 'constant';

export interface Schedule {
  type: SchedulerType;
  peak: number;
  warmupSteps: number;
  totalSteps: number;
  /** Where cosine/linear decay ends, as a fraction of the peak. */
  minRatio: number;
}

/** Linear warmup from 0 to the peak, then decay to peak × minRatio at totalSteps. */
export function learningRate(s: Schedule, step: number): number {
  if (step <= s.warmupSteps) return (s.peak * step) / Math.max(1, s.warmupSteps);
  if (s.type === 'constant') return s.peak;
  const progress = Math.min(1, (step - s.warmupSteps) / Math.max(1, s.totalSteps - s.warmupSteps));
  const decay = s.type === 'cosine' ? 0.5 * (1 + Math.cos(Math.PI * progress)) : 1 - progress;
  return s.peak * (s.minRatio + (1 - s.minRatio) * decay);
}
