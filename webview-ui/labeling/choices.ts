/** The labeling view's choices about a pair, in button order, with their keys. */
import type { Choice } from '../../src/protocol/labeling';
import { t } from '../shared/l10n';

export const CHOICES: readonly { choice: Choice; text: string; key: string }[] = [
  { choice: 'left', text: t('A better'), key: '1' },
  { choice: 'right', text: t('B better'), key: '2' },
  { choice: 'tie', text: t('Tie'), key: '3' },
  { choice: 'both_bad', text: t('Both bad'), key: '4' },
  { choice: 'skip', text: t('Skip'), key: 's' },
];
