/**
 * The demo's chart, judge.png: the judge's score of each policy on the held-out prompts as a bar,
 * its 95 % interval as a whisker, on a 0–100 % axis, and under each bar its correct answers.
 */
import { encodePng } from '../util/png';
import { GLYPH_HEIGHT, Raster, Rgb } from '../util/raster';
import { DemoReport } from './demo-report';

const WIDTH = 640,
  HEIGHT = 400,
  TEXT = 2;
const PLOT = { left: 70, right: 620, top: 60, bottom: 340 };
const WHITE: Rgb = [255, 255, 255],
  INK: Rgb = [40, 40, 40],
  GRID: Rgb = [225, 225, 225],
  WHISKER: Rgb = [20, 20, 20];
/** The SFT policy's bar in grey, the others each in a colour of its own. */
const BARS: Rgb[] = [
  [150, 150, 150],
  [31, 119, 180],
  [255, 127, 14],
  [44, 160, 44],
  [214, 39, 40],
];

/** judge.png's bytes. */
export function demoPlot(report: DemoReport): Buffer {
  const r = new Raster(WIDTH, HEIGHT, WHITE);
  const y = (share: number) => PLOT.bottom - share * (PLOT.bottom - PLOT.top);
  const centred = (text: string, x: number, top: number, colour = INK) =>
    r.text(text, x - Raster.textWidth(text, TEXT) / 2, top, TEXT, colour);

  centred(`JUDGE SCORE ON ${report.rows[0].prompts} HELD-OUT PROMPTS (95% CI)`, WIDTH / 2, 18);
  for (const tick of [0, 0.25, 0.5, 0.75, 1]) {
    r.fill(PLOT.left, y(tick), PLOT.right - PLOT.left, 1, GRID);
    const label = `${tick * 100}%`;
    r.text(label, PLOT.left - 8 - Raster.textWidth(label, TEXT), y(tick) - (GLYPH_HEIGHT * TEXT) / 2, TEXT, INK);
  }
  const slot = (PLOT.right - PLOT.left) / report.rows.length;
  report.rows.forEach((row, i) => {
    const centre = PLOT.left + slot * (i + 0.5);
    const barWidth = slot * 0.5;
    r.fill(centre - barWidth / 2, y(row.judge), barWidth, PLOT.bottom - y(row.judge), BARS[i % BARS.length]);
    const { low, high } = row.judgeInterval;
    r.fill(centre - 1, y(high), 3, y(low) - y(high) + 1, WHISKER);
    r.fill(centre - 10, y(high), 21, 2, WHISKER);
    r.fill(centre - 10, y(low), 21, 2, WHISKER);
    centred(`${Math.round(row.judge * 100)}%`, centre, y(high) - GLYPH_HEIGHT * TEXT - 6);
    centred(row.policy, centre, PLOT.bottom + 12);
    centred(`${row.correct} CORRECT`, centre, PLOT.bottom + 12 + GLYPH_HEIGHT * TEXT + 8, [90, 90, 90]);
  });
  r.fill(PLOT.left, PLOT.bottom, PLOT.right - PLOT.left, 2, INK);
  return encodePng(WIDTH, HEIGHT, r.pixels);
}
