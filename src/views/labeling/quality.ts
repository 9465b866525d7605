/**
 * The labeling session's quality checks and statistics: after a label, a share of the labeled
 * pairs (the `rlhf.labeling.checkRate` setting) comes back with the sides swapped, and the answer
 * goes to the check store (src/data/checks.ts), never to the preference file that training reads.
 */
import type { LabelingStatistics } from '../../protocol/labeling';
import { medianSeconds, pairwiseAgreement, positionBias, selfAgreement } from '../../data/agreement';
import { appendCheck, checksFileOf, drawCheck, readJudgements, undoCheck } from '../../data/checks';
import { readPreferences } from '../../data/preferences';
import type { Label, PreferenceRecord } from '../../data/preference-record';

export interface QualityHost {
  /** Who labels ("" when no one is named). */
  annotator(): string;
  /** The share of labels followed by a check, in [0, 1]. */
  checkRate(): number;
  random(): number;
}

export class QualityChecks {
  /** The pair to check next, per preference file. */
  private readonly due = new Map<string, string>();

  constructor(private readonly host: QualityHost) {}

  /** The pair whose check is due in this preference file, if any. */
  dueIn(preferencesFile: string): string | undefined {
    return this.due.get(preferencesFile);
  }

  /** After a label of `pairId`: maybe a check comes next. */
  afterLabel(preferencesFile: string, pairId: string): void {
    const { labels, checks } = readJudgements(preferencesFile);
    const next = drawCheck(labels, checks, {
      annotator: this.host.annotator(),
      rate: this.host.checkRate(),
      random: () => this.host.random(),
      except: pairId,
    });
    if (next !== undefined) this.due.set(preferencesFile, next);
  }

  /** The standing label of a pair that is due a check; undefined (and no longer due) when it has none. */
  labelOf(preferencesFile: string, pairId: string): PreferenceRecord | undefined {
    const record = readPreferences(preferencesFile)
      .records.filter((r) => r.id === pairId)
      .at(-1);
    if (!record || record.label === undefined || record.label === 'skip') this.due.delete(preferencesFile);
    return record;
  }

  /** Stores the check of the due pair; resolves once it is on disk. */
  async record(
    preferencesFile: string,
    pairId: string,
    check: { label: Label; shownLeft: 'a' | 'b'; seconds?: number },
  ): Promise<void> {
    const annotator = this.host.annotator();
    await appendCheck(checksFileOf(preferencesFile), {
      id: pairId,
      label: check.label,
      ...(annotator && { annotator }),
      created_at: new Date().toISOString(),
      shown_left: check.shownLeft,
      ...(check.seconds !== undefined && { duration_seconds: check.seconds }),
    });
    this.due.delete(preferencesFile);
  }

  /** No check is due: the label before it was undone, so that pair comes back first. */
  forget(preferencesFile: string): void {
    this.due.delete(preferencesFile);
  }

  /** Takes the latest check of the pair back; it is due again. */
  async undo(preferencesFile: string, pairId: string): Promise<void> {
    await undoCheck(checksFileOf(preferencesFile), pairId);
    this.due.set(preferencesFile, pairId);
  }

  /** Whether a check of the pair stands in the check store. */
  stands(preferencesFile: string, pairId: string): boolean {
    return readJudgements(preferencesFile).checks.some((c) => c.pairId === pairId);
  }

  /** The statistics of a preference file for the view. */
  statistics(preferencesFile: string): LabelingStatistics {
    const annotator = this.host.annotator();
    const { labels, checks } = readJudgements(preferencesFile);
    const mine = labels.filter((l) => l.annotator === annotator);
    const myChecks = checks.filter((c) => c.annotator === annotator);
    const seconds = medianSeconds([...mine, ...myChecks]);
    return {
      annotator,
      labels: mine.length,
      selfAgreement: selfAgreement(mine, myChecks),
      positionBias: positionBias([...mine, ...myChecks]),
      ...(seconds !== undefined && { medianSeconds: seconds }),
      agreement: pairwiseAgreement([...labels, ...checks]).map((a) => ({
        ...a,
        kappa: Number.isNaN(a.kappa) ? null : a.kappa,
      })),
    };
  }
}
