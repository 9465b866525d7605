/**
 * Ranking mode of the labeling session: the prompt whose candidates are ranked next, in an order
 * drawn once per prompt (so no candidate is always first), and the records a ranking stores.
 */
import type { QueueState, RankRequest } from '../../protocol/labeling';
import { labelPair } from '../../data/queue';
import { groupToRank, rankingLabels, RankGroup } from '../../data/ranking';
import type { ComparisonPair } from '../../data/queue';
import type { PreferenceRecord } from '../../data/preference-record';
import { shuffleWith } from '../../util/rng';

export class Rankings {
  /** The order candidates are shown in, per prompt. */
  private readonly orders = new Map<string, string[]>();

  constructor(private readonly random: () => number) {}

  /** The group to rank next, from the queue's pairs and its unlabeled ones. */
  group(pairs: readonly ComparisonPair[], unlabeled: readonly ComparisonPair[]): RankGroup | undefined {
    return groupToRank(pairs, unlabeled);
  }

  /** The group as the view shows it. */
  shown(group: RankGroup): NonNullable<QueueState['ranking']> {
    const key = JSON.stringify(group.pairs[0].prompt);
    const ids = group.candidates.map((c) => c.id);
    let order = this.orders.get(key);
    if (!order || order.length !== ids.length || !ids.every((id) => order!.includes(id))) {
      order = shuffleWith([...ids], this.random);
      this.orders.set(key, order);
    }
    const byId = new Map(group.candidates.map((c) => [c.id, c]));
    return {
      pairIds: group.pairs.map((p) => p.pair_id),
      prompt: group.pairs[0].prompt,
      candidates: order.map((id) => byId.get(id)!),
    };
  }

  /**
   * The records of a ranking (or of skipping the prompt) of `group`, which must be the group the
   * request names; throws an Error saying why not.
   */
  records(
    group: RankGroup | undefined,
    request: RankRequest,
    extra: { annotator?: string; seconds?: number },
  ): PreferenceRecord[] {
    const ids = group?.pairs.map((p) => p.pair_id) ?? [];
    if (!group || ids.length !== request.pairIds.length || !request.pairIds.every((id) => ids.includes(id)))
      throw new Error("This prompt's pairs have changed (labeled in another window?); showing them again.");
    const labels =
      request.ranks === 'skip'
        ? group.pairs.map((pair) => ({ pair, label: 'skip' as const }))
        : rankingLabels(group, request.ranks);
    // The time of the ranking, shared by the pairs it labels.
    const seconds = extra.seconds === undefined ? undefined : Math.round((10 * extra.seconds) / labels.length) / 10;
    return labels.map(({ pair, label }) =>
      labelPair(pair, label, {
        ...(extra.annotator ? { annotator: extra.annotator } : {}),
        ...(seconds !== undefined && { duration_seconds: seconds }),
      }),
    );
  }
}
