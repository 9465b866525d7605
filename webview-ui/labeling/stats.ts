/**
 * The Statistics section of the labeling view: the annotator's self-agreement on quality checks,
 * position bias, time per label, and Cohen's κ between annotators sharing the preferences file.
 */
import type { LabelingStatistics } from '../../src/protocol/labeling';
import { t } from '../shared/l10n';
import { h } from './dom';

const percent = (part: number, whole: number) => Math.round((100 * part) / whole);

export class StatisticsPanel {
  private readonly list = h('dl', { 'data-testid': 'statistics-list' });
  private readonly agreement = h('ul', {
    'aria-label': t('Agreement between annotators'),
    'data-testid': 'statistics-agreement',
  });
  readonly element = h(
    'section',
    { class: 'statistics', id: 'statistics', 'aria-label': t('Labeling statistics'), 'data-testid': 'statistics' },
    this.list,
    this.agreement,
  );

  render(stats: LabelingStatistics | undefined): void {
    if (!stats) {
      this.list.replaceChildren(h('p', { class: 'hint' }, t('No labels yet.')));
      this.agreement.replaceChildren();
      return;
    }
    const { selfAgreement: self, positionBias: bias } = stats;
    const rows: [string, string, string][] = [
      [t('Labels by {0}', stats.annotator || t('(no annotator)')), String(stats.labels), 'labels'],
      [
        t('Self-agreement'),
        self.checks === 0
          ? t('no quality checks yet')
          : t('{0} of {1} checks ({2}%)', self.agreed, self.checks, percent(self.agreed, self.checks)),
        'self-agreement',
      ],
      [
        t('Left response chosen'),
        bias.decided === 0 ? '–' : t('{0}% of {1}', percent(bias.left, bias.decided), bias.decided),
        'position-bias',
      ],
      [
        t('Median time per label'),
        stats.medianSeconds === undefined ? '–' : t('{0} s', stats.medianSeconds.toFixed(1)),
        'median-seconds',
      ],
    ];
    this.list.replaceChildren(
      ...rows.flatMap(([term, value, id]) => [h('dt', {}, term), h('dd', { 'data-testid': `stat-${id}` }, value)]),
    );
    this.agreement.replaceChildren(
      ...stats.agreement.map((a) =>
        h(
          'li',
          {},
          t(
            '{0} · {1}: Cohen κ {2}, same label on {3}% of {4} pairs',
            a.annotators[0],
            a.annotators[1],
            a.kappa === null ? '–' : a.kappa.toFixed(2),
            percent(a.agreement * a.pairs, a.pairs),
            a.pairs,
          ),
        ),
      ),
    );
  }
}
