/**
 * A run whose training goes wrong, for every stage. A loss or gradient norm that is not finite
 * after an update, an eval loss that is not finite, or weights that became so stop the run before
 * anything is saved, so no checkpoint ever holds them; the error names the last checkpoint, which
 * is intact, or says that none was saved. A training loss that climbs far above where it started is
 * warned of, once.
 */
import { NonFiniteParamsError } from '../model/checkpoint';

export class DivergenceGuard {
  /** The newest checkpoint of this run with finite weights: the one it resumed from, then each one saved. */
  private lastCheckpoint?: string;

  /** `title`: how messages name the stage. */
  constructor(
    private readonly title: string,
    resumedFrom?: string,
  ) {
    this.lastCheckpoint = resumedFrom;
  }

  /** After an optimizer update (`at`: "step 3", "iteration 3"): its loss and gradient norm must be finite. */
  checkUpdate(at: string, m: Record<string, number>): void {
    if (!Number.isFinite(m.loss) || !Number.isFinite(m.grad_norm))
      throw this.diverged(at, `loss ${m.loss}, grad_norm ${m.grad_norm}`);
  }

  /** After an eval, before any save: the eval loss of the updated weights must be finite. */
  checkEval(at: string, values: Record<string, number>): void {
    const loss = values.eval_loss;
    if (loss !== undefined && !Number.isFinite(loss)) throw this.diverged(at, `eval_loss ${loss}`);
  }

  /** Runs `work` (a save, a check of the weights); weights that are not finite stop the run instead. */
  async guard<T>(at: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (e) {
      if (e instanceof NonFiniteParamsError) throw this.diverged(at, `weight "${e.tensor}" became ${e.value}`);
      throw e;
    }
  }

  /** Saves a checkpoint through `guard`; once saved, it is the one messages point to. */
  async save(at: string, dir: string, save: () => Promise<void>): Promise<void> {
    await this.guard(at, save);
    this.lastCheckpoint = dir;
  }

  /** An error that stops the run at `at` for `cause`, saying what is left to go on from. */
  stoppedBy(at: string, cause: string): Error {
    return new Error(`${this.title} stopped at ${at}: ${cause}; ${this.leftover()}`);
  }

  /** What is left to go on from: the last checkpoint, or none. */
  private leftover(): string {
    return this.lastCheckpoint ? `the last checkpoint, ${this.lastCheckpoint}, is intact` : 'no checkpoint was saved';
  }

  private diverged(at: string, cause: string): Error {
    const next = this.lastCheckpoint ? 'resume from it' : 'start again';
    return new Error(
      `${this.title} diverged at ${at} (${cause}); ${this.leftover()} — lower learning_rate and ${next}`,
    );
  }
}

/** How many logged values the present loss is the mean of. */
const WINDOW = 5;
/** How far above its start a loss must climb to be warned of: both this many times, and this much more. */
const RISE_FACTOR = 3;
const RISE_MARGIN = 1;

/**
 * Watches a logged loss (`metric`) for a climb far above where it started: its first logged value
 * (a blow-up can come within a few steps, so the start is not a mean of several) against the mean
 * of the last few. Warns once.
 */
export class LossRise {
  private start?: number;
  private readonly recent: number[] = [];
  /** The warning, once given. */
  warning?: string;

  constructor(private readonly metric: string) {}

  /** Takes each logged value; returns the warning the first time the climb shows. */
  add(at: string, value: number): string | undefined {
    if (this.start === undefined) {
      this.start = value;
      return undefined;
    }
    this.recent.push(value);
    if (this.recent.length > WINDOW) this.recent.shift();
    if (this.warning || this.recent.length < WINDOW) return undefined;
    const now = this.recent.reduce((a, b) => a + b, 0) / WINDOW;
    if (!(now > RISE_FACTOR * this.start && now > this.start + RISE_MARGIN)) return undefined;
    this.warning =
      `${this.metric} rose from ${round(this.start)} (first logged) to ${round(now)} (mean of the last ${WINDOW} logged) by ${at}: ` +
      'training is unstable — lower learning_rate';
    return this.warning;
  }
}

const round = (x: number) => Number(x.toPrecision(4));
