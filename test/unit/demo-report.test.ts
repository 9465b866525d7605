/** The demo's judge, its annotator, the Wilson interval of the before/after table, and the PNG it draws. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inflateSync } from 'zlib';
import { judgeAnnotator } from '../../src/data/annotators';
import { followsRule, statesAnswer } from '../../src/data/judge';
import { ComparisonPair } from '../../src/data/queue';
import { demoPlot } from '../../src/train/demo-plot';
import { PolicyEval } from '../../src/train/demo-eval';
import { demoReport, reportMarkdown, wilsonInterval } from '../../src/train/demo-report';
import { encodePng } from '../../src/util/png';

test('the judge passes one sentence in the language of the question, and nothing else', () => {
  assert.ok(followsRule('What does a cat eat?', ' A cat eats fish.'));
  assert.ok(followsRule('猫吃什么？', '猫吃鱼。'));
  assert.ok(followsRule('Can a cat fly?', ' No, a cat cannot fly.'));
  assert.ok(!followsRule('What does a cat eat?', ' A cat eats fish. I hope this helps!'));
  assert.ok(!followsRule('猫吃什么？', '猫吃鱼。希望有帮助！'));
  assert.ok(!followsRule('猫吃什么？', ' A cat eats fish.'), 'an English answer to a Chinese question');
  assert.ok(!followsRule('What does a cat eat?', ' A cat eats fish'), 'no full stop');
  assert.ok(statesAnswer(' A cat eats Fish.', 'fish'));
  assert.ok(!statesAnswer(' A cat eats grass.', 'fish'));
});

test("the judge's annotator prefers the rule first, then the stated answer", () => {
  const annotator = judgeAnnotator(new Map([['What does a cat eat?', 'fish']]));
  const pair = (a: string, b: string) =>
    ({ pair_id: 'p', prompt: 'What does a cat eat?', response_a: a, response_b: b }) as ComparisonPair;
  assert.equal(annotator.judge(pair(' A cat eats grass.', ' A cat eats fish. I hope this helps!')).label, 'a');
  assert.equal(annotator.judge(pair(' A cat eats grass.', ' A cat eats fish.')).label, 'b');
  assert.equal(annotator.judge(pair(' A cat eats fish!', ' A cat eats fish. I hope this helps!')).label, 'tie');
});

test("Wilson's interval matches its closed form at known points", () => {
  const half = wilsonInterval(50, 100);
  assert.ok(Math.abs(half.low - 0.4038) < 1e-4 && Math.abs(half.high - 0.5962) < 1e-4, JSON.stringify(half));
  const none = wilsonInterval(0, 40);
  assert.equal(none.low, 0);
  assert.ok(Math.abs(none.high - 0.0876) < 1e-4, JSON.stringify(none));
});

test('the report marks a policy whose interval lies above the SFT policy’s, and draws a readable PNG', () => {
  const policy = (name: string, passed: number): PolicyEval => ({
    policy: name,
    answers: [{ prompt: '猫吃什么？', response: `猫吃鱼。${name === 'SFT' ? '希望有帮助！' : ''}` }],
    passed,
    correct: 30,
    prompts: 100,
    meanReward: 0,
    kl: 0,
  });
  const report = demoReport([policy('SFT', 30), policy('PPO', 45), policy('DPO', 80)]);
  assert.deepEqual(
    report.rows.map((r) => r.beatsSft),
    [false, false, true],
  );
  assert.match(reportMarkdown(report), /\| 猫吃什么？ \| 猫吃鱼。希望有帮助！ \| 猫吃鱼。 \| 猫吃鱼。 \|/);

  const png = demoPlot(report);
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  assert.equal(png.readUInt32BE(16), 640);
  const tiny = encodePng(2, 1, Uint8Array.from([255, 0, 0, 0, 0, 255]));
  const idat = tiny.indexOf('IDAT');
  const rows = inflateSync(tiny.subarray(idat + 4, idat + 4 + tiny.readUInt32BE(idat - 4)));
  assert.deepEqual([...rows], [0, 255, 0, 0, 0, 0, 255]);
});
