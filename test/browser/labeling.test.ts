/**
 * The labeling webview in Chromium under the production CSP, with the test playing the extension
 * host: keyboard-only labeling, layout, Markdown sanitisation, save states and the empty states.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { QueueState, ToHost, ToWebview } from '../../src/protocol/labeling';
import { closeBrowser, noBrowser, openWebview, WebviewPage } from './page';

after(closeBrowser);

const QUEUE_KEY = '/work/pets.rlhf.json';

function queueState(
  done: number,
  total: number,
  pair?: Partial<QueueState['pair']> & { pairId: string },
  extra: Partial<QueueState> = {},
): ToWebview {
  return {
    type: 'state',
    state: {
      kind: 'queue',
      queues: [{ key: QUEUE_KEY, label: 'pets', detail: 'pets/queue.jsonl' }],
      selected: QUEUE_KEY,
      done,
      total,
      canUndo: done > 0,
      restricted: false,
      problems: [],
      ...(pair
        ? {
            pair: {
              prompt: `Prompt of ${pair.pairId}`,
              left: `Left of ${pair.pairId}`,
              right: `Right of ${pair.pairId}`,
              ...pair,
            },
          }
        : {}),
      ...extra,
    },
  };
}

/** Waits until the page has posted `count` messages other than layout reports; returns those. */
async function postedCount(page: WebviewPage, count: number): Promise<ToHost[]> {
  await page.page.waitForFunction(
    (n) =>
      (window as unknown as { __posted: { type: string }[] }).__posted.filter((m) => m.type !== 'layout').length >= n,
    count,
  );
  return (await page.posted()) as ToHost[];
}

/** The page with its posted messages less the layout reports, which come whenever the layout settles. */
async function open(options: Parameters<typeof openWebview>[1] = {}): Promise<WebviewPage> {
  const opened = await openWebview('labeling', { styles: ['codicon.css'], ...options });
  const page = {
    ...opened,
    posted: async () => ((await opened.posted()) as ToHost[]).filter((m) => m.type !== 'layout'),
  };
  assert.deepEqual(await postedCount(page, 1), [{ type: 'ready' }]);
  return page;
}

/** Waits until the element shows matching text (a message from the host is handled asynchronously). */
async function showsText(page: WebviewPage, testId: string, expected: string | RegExp): Promise<void> {
  const element = page.page.getByTestId(testId);
  const matches =
    typeof expected === 'string'
      ? new RegExp(`^\\s*${expected.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*$`)
      : expected;
  await element
    .filter({ hasText: matches })
    .waitFor({ state: 'attached', timeout: 5000 })
    .catch(async () => {
      assert.fail(`${testId} shows ${JSON.stringify(await element.textContent())}, not ${matches}`);
    });
}

test(
  'labeling webview: 20 pairs labeled with the keyboard alone, a rationale, undo, and no CSP violation',
  { skip: noBrowser },
  async () => {
    const page = await open({ width: 360 });
    const total = 20;
    const keys = ['1', '2', '3', '4', 's'];
    const choices = ['left', 'right', 'tie', 'both_bad', 'skip'];
    await page.send(queueState(0, total, { pairId: 'p0' }));
    for (let i = 0; i < total; i++) {
      await showsText(page, 'response-left', `Left of p${i}`);
      await showsText(page, 'progress', `${i} / ${total} labeled`);
      const before = (await page.posted()).length;
      if (i === 5) {
        // Tab to the rationale; keys typed there are text, not choices; Escape goes back to the keys.
        for (
          let tabs = 0;
          tabs < 20 && !(await page.page.evaluate(() => document.activeElement?.tagName === 'VSCODE-TEXTAREA'));
          tabs++
        )
          await page.page.keyboard.press('Tab');
        await page.page.keyboard.type('u 1 2 3 4 s');
        await page.page.keyboard.press('Control+z');
        await page.page.keyboard.press('Control+a');
        await page.page.keyboard.type('A is 1 step better.');
        assert.equal((await page.posted()).length, before, 'no message while typing');
        await page.page.keyboard.press('Escape');
        await page.page
          .waitForFunction(() => document.activeElement?.tagName === 'VSCODE-BUTTON', null, { timeout: 5000 })
          .catch(() => assert.fail('Escape in the rationale does not return focus to the choice buttons'));
      }
      await page.page.keyboard.press(keys[i % keys.length]);
      const message = (
        await postedCount(page, before + 1).catch(() =>
          assert.fail(`pair ${i}: key ${keys[i % keys.length]} sent nothing`),
        )
      )[before];
      assert.deepEqual(message, {
        type: 'label',
        id: message.type === 'label' ? message.id : -1,
        pairId: `p${i}`,
        choice: choices[i % choices.length],
        ...(i === 5 ? { rationale: 'A is 1 step better.' } : {}),
      });
      await showsText(page, 'save-status', /Saving/);
      await page.page.keyboard.press('1');
      assert.equal((await page.posted()).length, before + 1, 'no second label while one is being saved');
      if (message.type !== 'label') throw new Error('not a label');
      await page.send({ type: 'result', id: message.id, ok: true });
      await page.send(queueState(i + 1, total, i + 1 < total ? { pairId: `p${i + 1}` } : undefined));
      await showsText(page, 'save-status', /Saved/);
    }
    await showsText(page, 'notice', /All 20 pairs are labeled/);
    assert.equal(
      await page.page.getByTestId('rationale').evaluate((e) => (e as HTMLElement & { value: string }).value),
      '',
    );

    for (const key of ['u', 'Control+z']) {
      const before = (await page.posted()).length;
      await page.page.keyboard.press(key);
      const message = (await postedCount(page, before + 1))[before];
      assert.equal(message.type, 'undo', key);
      if (message.type !== 'undo') throw new Error('not an undo');
      await page.send({ type: 'result', id: message.id, ok: true });
      await page.send(queueState(total - 1, total, { pairId: 'p19' }));
      // A key pressed while an undo is in flight is ignored: wait for this one's answer.
      await showsText(page, 'save-status', /Undone/);
    }
    assert.deepEqual(await page.cspViolations(), []);
    await page.close();
  },
);

test(
  'labeling webview: responses side by side when wide, stacked when narrow, long text scrolls',
  { skip: noBrowser },
  async () => {
    const long = Array.from({ length: 200 }, (_, i) => `Line ${i}`).join('\n\n');
    for (const [width, sideBySide] of [
      [900, true],
      [300, false],
    ] as const) {
      const page = await open({ width, height: 700 });
      await page.send(queueState(0, 1, { pairId: 'p0', left: long }));
      const left = (await page.page.getByTestId('response-left').boundingBox())!;
      const right = (await page.page.getByTestId('response-right').boundingBox())!;
      if (sideBySide) {
        assert.ok(right.x > left.x + left.width - 1 && Math.abs(right.y - left.y) < 1, `side by side at ${width}px`);
      } else {
        assert.ok(right.y >= left.y + left.height && Math.abs(right.x - left.x) < 1, `stacked at ${width}px`);
      }
      const scroll = await page.page
        .getByTestId('response-left')
        .evaluate((e) => ({ client: e.clientHeight, scroll: e.scrollHeight, overflow: getComputedStyle(e).overflowY }));
      assert.ok(scroll.scroll > scroll.client && scroll.overflow === 'auto', 'long text scrolls inside its box');
      assert.deepEqual(await page.cspViolations(), []);
      await page.close();
    }
  },
);

test(
  'labeling webview: Markdown renders, and HTML in responses neither runs nor appears as HTML',
  { skip: noBrowser },
  async () => {
    const page = await open();
    const attack =
      '<img src=x onerror="window.__pwned = 1"> <script>window.__pwned = 2</script> [click](javascript:window.__pwned=3)\n\n```js\nconst x = "<b>";\n```\n\n**bold**';
    await page.send(
      queueState(
        0,
        1,
        { pairId: 'p0', left: attack, right: '<iframe src="https://example.com"></iframe>' },
        { guidelines: '# Be kind\n\n<img src=x onerror="window.__pwned = 4">' },
      ),
    );
    const left = page.page.getByTestId('response-left');
    assert.equal(await left.locator('img, script, iframe').count(), 0);
    assert.equal(await page.page.getByTestId('response-right').locator('iframe').count(), 0);
    assert.equal(await page.page.getByTestId('guidelines').locator('img').count(), 0);
    assert.match(await left.innerText(), /<img src=x onerror=/);
    assert.equal((await left.locator('pre code').innerText()).trim(), 'const x = "<b>";');
    assert.equal(await left.locator('strong').innerText(), 'bold');
    assert.equal(await left.locator('a[href^="javascript"]').count(), 0);
    assert.equal(await page.page.getByTestId('guidelines').locator('h1').innerText(), 'Be kind');
    await page.page.waitForTimeout(100);
    assert.equal(await page.page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined);
    assert.deepEqual(await page.cspViolations(), []);
    await page.close();
  },
);

test(
  'labeling webview: a failed save keeps the pair, a retry works, a rationale draft survives a reload',
  { skip: noBrowser },
  async () => {
    const page = await open();
    await page.send(queueState(0, 2, { pairId: 'p0' }));
    await page.send({ type: 'state', state: { kind: 'bogus' } });
    await page.send({ type: 'result', id: 'x' });
    await page.send(queueState(0, 3, { pairId: 'p0' }));
    // Handled in order: the bogus messages were dropped without breaking the page.
    await showsText(page, 'progress', '0 / 3 labeled');

    await page.page.getByTestId('rationale').click();
    await page.page.keyboard.type('too long');
    assert.deepEqual(await page.state(), { draft: { pairId: 'p0', rationale: 'too long' } });
    await page.page.getByRole('button', { name: 'B better' }).click();
    const [, first] = await postedCount(page, 2);
    if (first.type !== 'label') throw new Error('not a label');
    await page.send({ type: 'result', id: first.id, ok: false, error: 'The label was not saved: disk full' });
    await showsText(page, 'save-status', /disk full/);
    await showsText(page, 'response-left', 'Left of p0');
    await page.page.getByRole('button', { name: 'B better' }).click();
    const [, , retry] = await postedCount(page, 3);
    assert.deepEqual(retry, { type: 'label', id: first.id + 1, pairId: 'p0', choice: 'right', rationale: 'too long' });
    await page.close();

    const reloaded = await open({ state: { draft: { pairId: 'p0', rationale: 'too long' } } });
    await reloaded.send(queueState(0, 2, { pairId: 'p0' }));
    assert.equal(
      await reloaded.page.getByTestId('rationale').evaluate((e) => (e as HTMLElement & { value: string }).value),
      'too long',
    );
    assert.deepEqual(await reloaded.cspViolations(), []);
    await reloaded.close();
  },
);

test(
  'labeling webview: no queue, an empty queue with its command, guidelines hint, problems and the queue picker',
  { skip: noBrowser },
  async () => {
    const page = await open();
    await page.send({
      type: 'state',
      state: {
        kind: 'noQueue',
        problems: ['/work/x.rlhf.json: comparisons.preferences: /home/.bashrc is outside the workspace folder /work'],
      },
    });
    await showsText(page, 'notice', /comparisons/);
    await showsText(page, 'problems', /x\.rlhf\.json: comparisons\.preferences: .* is outside the workspace folder/);
    assert.equal(await page.page.getByTestId('restricted').isVisible(), false);
    assert.equal(await page.page.getByTestId('progress').isVisible(), false);
    await page.page.getByTestId('notice-action').click();
    assert.deepEqual((await postedCount(page, 2))[1], { type: 'runCommand', command: 'rlhf.newExperiment' });

    const queues = [
      { key: QUEUE_KEY, label: 'pets', detail: 'pets/queue.jsonl' },
      { key: '/work/b.rlhf.json', label: 'b', detail: 'b/queue.jsonl' },
    ];
    await page.send(queueState(0, 0, undefined, { queues, problems: ['queue.jsonl:3: not JSON'] }));
    await showsText(page, 'notice', /empty/);
    await showsText(page, 'guidelines', /guidelines\.md/);
    await showsText(page, 'problems', /queue\.jsonl:3: not JSON/);
    await page.page.getByTestId('notice-action').click();
    assert.deepEqual((await postedCount(page, 3))[2], { type: 'runCommand', command: 'rlhf.generateComparisons' });

    await page.page.getByTestId('queue-picker').evaluate((select, key) => {
      (select as HTMLElement & { value: string }).value = key;
      select.dispatchEvent(new Event('change'));
    }, queues[1].key);
    assert.deepEqual((await postedCount(page, 4))[3], { type: 'selectQueue', queue: queues[1].key });
    assert.deepEqual(await page.cspViolations(), []);
    await page.close();
  },
);

test(
  'labeling webview: Restricted Mode shows the queue read-only, says why, and offers Manage Workspace Trust',
  { skip: noBrowser },
  async () => {
    const page = await open();
    await page.send(queueState(1, 3, { pairId: 'p1' }, { restricted: true, canUndo: true }));
    await showsText(
      page,
      'restricted',
      /Restricted Mode: this queue is read-only, and labels are not saved until you trust the workspace\./,
    );
    await showsText(page, 'response-left', 'Left of p1');
    for (const testId of ['choice-left', 'choice-skip', 'undo', 'rationale']) {
      assert.equal(
        await page.page.getByTestId(testId).evaluate((e) => (e as HTMLElement & { disabled: boolean }).disabled),
        true,
        `${testId} is disabled`,
      );
    }
    for (const key of ['1', '2', 's', 'u', 'Control+z']) await page.page.keyboard.press(key);
    await page.page.getByTestId('choice-left').click({ force: true });
    await page.page.getByTestId('manage-trust').click();
    assert.deepEqual(
      (await postedCount(page, 2)).slice(1),
      [{ type: 'runCommand', command: 'workbench.trust.manage' }],
      'no label or undo was sent',
    );

    await page.send(queueState(1, 3, { pairId: 'p1' }, { restricted: false }));
    await page.page.waitForFunction(() => document.querySelector('[data-testid="restricted"]')?.hasAttribute('hidden'));
    await page.page.keyboard.press('1');
    assert.deepEqual((await postedCount(page, 3))[2], { type: 'label', id: 0, pairId: 'p1', choice: 'left' });
    assert.deepEqual(await page.cspViolations(), []);
    await page.close();
  },
);

const CHOICE_NAMES = ['left', 'right', 'tie', 'both_bad', 'skip'];
/** The header's buttons. */
const TOOLS = ['guidelines-toggle', 'statistics-toggle', 'search-toggle', 'generate-from-run'];

/** Where each part is, and whether the view scrolls either way. */
async function measure(page: WebviewPage) {
  await page.page.evaluate(() => new Promise((resolve) => requestAnimationFrame(resolve)));
  return page.page.evaluate(
    ({ names, tools }) => {
      const box = (selector: string) => {
        const r = document.querySelector(selector)!.getBoundingClientRect();
        return { top: r.top, bottom: r.bottom, left: r.left, right: r.right, height: r.height };
      };
      const ids = ['prompt', 'response-left', 'response-right', 'rationale', 'undo', 'save-status'];
      const choices = names.map((c) => `choice-${c}`);
      const root = document.documentElement;
      // The picker shows the selected queue's name in its shadow DOM.
      const name = document
        .querySelector('[data-testid="queue-picker"]')
        ?.shadowRoot?.querySelector('.select-face .text');
      return {
        view: { width: innerWidth, height: innerHeight },
        queueName: name && { text: name.textContent, scrollWidth: name.scrollWidth, clientWidth: name.clientWidth },
        tools: tools.map((id) => box(`[data-testid="${id}"]`)),
        scroll: { width: root.scrollWidth, height: root.scrollHeight },
        boxes: Object.fromEntries([...ids, ...choices].map((id) => [id, box(`[data-testid="${id}"]`)])),
        keys: choices.map((id) => box(`[data-testid="${id}"] kbd`)),
        scrolls: Object.fromEntries(
          ['prompt', 'response-left', 'response-right'].map((id) => {
            const e = document.querySelector(`[data-testid="${id}"]`)!;
            return [id, e.scrollHeight > e.clientHeight];
          }),
        ),
      };
    },
    { names: CHOICE_NAMES, tools: TOOLS },
  );
}

/** The queue picker shows the whole name, and the header's buttons are in sight side by side. */
function assertHeaderFits(m: Awaited<ReturnType<typeof measure>>, name: string, what: string): void {
  assert.equal(m.queueName?.text?.trim(), name, `${what}: the picker shows the queue`);
  assert.ok(
    m.queueName!.scrollWidth <= m.queueName!.clientWidth,
    `${what}: the queue's name is not cut (${m.queueName!.scrollWidth} px wide in ${m.queueName!.clientWidth} px)`,
  );
  const tools = [...m.tools].sort((x, y) => x.left - y.left);
  for (const [i, b] of tools.entries()) {
    assert.ok(b.height > 0 && b.left >= 0 && b.right <= m.view.width && b.top >= 0, `${what}: button ${i} in sight`);
    if (i > 0) assert.ok(tools[i - 1].right <= b.left || tools[i - 1].bottom <= b.top, `${what}: buttons overlap`);
  }
}

test(
  "labeling webview: at the sidebar's default 300×382 px the prompt, both answers and every choice with its key are in sight without scrolling the view",
  { skip: noBrowser },
  async () => {
    const words = (n: number, what: string) => Array.from({ length: n }, (_, i) => `${what} word ${i}`).join(' ');
    const cases = [
      { name: 'short texts', prompt: 'What do cats eat?', left: 'Fish.', right: 'Mice and fish.', problems: [] },
      {
        name: 'long texts and a config problem',
        prompt: words(80, 'prompt'),
        left: words(300, 'left'),
        right: words(300, 'right'),
        problems: ['/work/pets.rlhf.json: sft.learning_rat: Unrecognized key: "learning_rat"'],
      },
    ];
    for (const c of cases) {
      const page = await open({ width: 300, height: 382, workbenchFont: true });
      const { prompt, left, right, problems } = c;
      await page.send(queueState(5, 600, { pairId: 'p5', prompt, left, right }, { problems }));
      await showsText(page, 'response-left', left);
      const m = await measure(page);
      assert.deepEqual(m.scroll, m.view, `${c.name}: the view does not scroll either way`);
      assertHeaderFits(m, 'pets (pets/queue.jsonl)', c.name);
      const order = ['prompt', 'response-left', 'response-right', 'rationale', 'choice-left', 'choice-both_bad'];
      for (const [id, b] of Object.entries(m.boxes)) {
        assert.ok(b.top >= 0 && b.bottom <= m.view.height, `${c.name}: ${id} is in sight (${b.top}–${b.bottom})`);
        assert.ok(b.left >= 0 && b.right <= m.view.width, `${c.name}: ${id} is not cut off at the side`);
      }
      for (let i = 1; i < order.length; i++) {
        const [above, below] = [m.boxes[order[i - 1]], m.boxes[order[i]]];
        assert.ok(above.bottom <= below.top, `${c.name}: ${order[i - 1]} ends above ${order[i]}`);
      }
      for (const [i, key] of m.keys.entries()) {
        const button = m.boxes[`choice-${CHOICE_NAMES[i]}`];
        assert.ok(
          key.height > 0 && key.left >= button.left && key.right <= button.right,
          `key ${i} shows on its button`,
        );
      }
      const long = c.problems.length > 0;
      // Short texts show whole; long ones scroll inside their boxes, which keep at least two lines.
      assert.deepEqual(m.scrolls, { prompt: long, 'response-left': long, 'response-right': long }, c.name);
      for (const id of ['prompt', 'response-left', 'response-right'])
        assert.ok(!long || m.boxes[id].height >= 30, `${c.name}: ${id} shows two lines (${m.boxes[id].height} px)`);
      if (long) {
        await showsText(page, 'problems-summary', /sft\.learning_rat/);
        assert.equal(await page.page.getByTestId('problems-summary').isVisible(), true);
      }
      const layouts = (
        (await page.page.evaluate(() => (window as unknown as { __posted: ToHost[] }).__posted)) as ToHost[]
      )
        .filter((p) => p.type === 'layout')
        .at(-1);
      assert.deepEqual(layouts, { type: 'layout', width: 300, height: 382, fits: true });
      assert.deepEqual(await page.cspViolations(), []);
      await page.close();
    }
  },
);

test('labeling webview: the prompt says which of its pairs is shown', { skip: noBrowser }, async () => {
  const page = await open({ width: 300, height: 382, workbenchFont: true });
  await page.send(queueState(2, 600, { pairId: 'p2', position: { index: 3, count: 6 } }));
  await showsText(page, 'prompt-label', 'Prompt · pair 3 of 6');
  await page.send(queueState(3, 600, { pairId: 'p3', position: { index: 1, count: 1 } }));
  await showsText(page, 'prompt-label', 'Prompt');
  await page.close();
});

test(
  'labeling webview: a view too short for the pair says so to the host, and the guidelines open on demand',
  { skip: noBrowser },
  async () => {
    const page = await open({ width: 300, height: 220, workbenchFont: true });
    await page.send(queueState(0, 4, { pairId: 'p0' }, { guidelines: '# Be kind' }));
    await page.page.waitForFunction(() =>
      (window as unknown as { __posted: ToHost[] }).__posted.some((m) => m.type === 'layout' && !m.fits),
    );
    await page.page.setViewportSize({ width: 900, height: 600 });
    await page.page.waitForFunction(() =>
      (window as unknown as { __posted: ToHost[] }).__posted.some(
        (m) => m.type === 'layout' && m.fits && m.width === 900,
      ),
    );
    assert.equal(await page.page.getByTestId('guidelines').isVisible(), false);
    await page.page.getByTestId('guidelines-toggle').click();
    assert.equal(await page.page.getByTestId('guidelines').locator('h1').innerText(), 'Be kind');
    assert.equal(await page.page.getByTestId('guidelines-toggle').getAttribute('aria-expanded'), 'true');
    await page.close();
  },
);

test(
  'labeling webview: in Chinese, the choices keep their keys and still fit the sidebar',
  { skip: noBrowser },
  async () => {
    const l10n = JSON.parse(
      fs.readFileSync(path.join(__dirname, '..', '..', 'l10n', 'bundle.l10n.zh-cn.json'), 'utf8'),
    ) as Record<string, string>;
    const page = await open({ width: 300, height: 382, workbenchFont: true, l10n });
    await page.send(queueState(5, 600, { pairId: 'p5', position: { index: 2, count: 6 } }));
    await showsText(page, 'progress', '已标注 5 / 600');
    await showsText(page, 'prompt-label', '提示 · 第 2 对，共 6 对');
    assert.equal((await page.page.getByTestId('choice-left').innerText()).replace(/\s+/g, ' '), 'A 更好 1');
    assert.equal(await page.page.getByRole('button', { name: '都不好' }).count(), 1);
    const m = await measure(page);
    assert.deepEqual(m.scroll, m.view, 'fits without scrolling');
    await page.page.keyboard.press('2');
    assert.deepEqual((await postedCount(page, 2))[1], { type: 'label', id: 0, pairId: 'p5', choice: 'right' });
    assert.deepEqual(await page.cspViolations(), []);
    await page.close();
  },
);

const STATISTICS: QueueState['statistics'] = {
  annotator: 'ana',
  labels: 40,
  selfAgreement: { checks: 4, agreed: 3 },
  positionBias: { decided: 30, left: 18 },
  medianSeconds: 4.25,
  agreement: [{ annotators: ['ana', 'bo'], pairs: 8, agreement: 0.75, kappa: 0.5 }],
};

/** Tabs until the element with this test id has focus. */
async function tabTo(page: WebviewPage, testId: string): Promise<void> {
  for (let tabs = 0; tabs < 30; tabs++) {
    if (await page.page.evaluate((id) => document.activeElement?.getAttribute('data-testid') === id, testId)) return;
    await page.page.keyboard.press('Tab');
  }
  assert.fail(`${testId} cannot be reached with Tab`);
}

test(
  'labeling webview: the statistics and guidelines open from the keyboard, and stay open after a reload',
  { skip: noBrowser },
  async () => {
    const page = await open({ width: 360, height: 600 });
    const state = queueState(40, 60, { pairId: 'p40' }, { statistics: STATISTICS, guidelines: '# Be kind' });
    await page.send(state);
    assert.equal(await page.page.getByTestId('statistics').isVisible(), false, 'closed at first');
    await tabTo(page, 'statistics-toggle');
    await page.page.keyboard.press('Enter');
    await showsText(page, 'stat-labels', '40');
    await showsText(page, 'stat-self-agreement', '3 of 4 checks (75%)');
    await showsText(page, 'stat-position-bias', '60% of 30');
    await showsText(page, 'stat-median-seconds', '4.3 s');
    await showsText(page, 'statistics-agreement', 'ana · bo: Cohen κ 0.50, same label on 75% of 8 pairs');
    assert.equal(await page.page.getByTestId('statistics-toggle').getAttribute('aria-expanded'), 'true');
    await tabTo(page, 'guidelines-toggle');
    await page.page.keyboard.press(' ');
    assert.equal(await page.page.getByTestId('guidelines').locator('h1').innerText(), 'Be kind');
    await page.page.keyboard.press('Enter');
    assert.equal(await page.page.getByTestId('guidelines').isVisible(), false, 'closed again');
    assert.deepEqual((await page.state()) as unknown, { open: { statistics: true, guidelines: false } });
    assert.deepEqual(await page.cspViolations(), []);
    await page.close();

    const reloaded = await open({ width: 360, height: 600, state: { open: { statistics: true, guidelines: false } } });
    await reloaded.send(state);
    await showsText(reloaded, 'stat-labels', '40');
    assert.equal(await reloaded.page.getByTestId('statistics').isVisible(), true);
    assert.equal(await reloaded.page.getByTestId('guidelines').isVisible(), false);
    await reloaded.close();

    // Show Labeling Statistics opens the section from the command palette.
    const fresh = await open({ width: 360, height: 600 });
    await fresh.send(state);
    await fresh.send({ type: 'openSection', section: 'statistics' });
    await showsText(fresh, 'stat-labels', '40');
    assert.equal(await fresh.page.getByTestId('statistics-toggle').getAttribute('aria-expanded'), 'true');
    assert.deepEqual(await fresh.state(), { open: { statistics: true } });
    await fresh.close();
  },
);

test('labeling webview: a quality check says so, and is labeled with the same keys', { skip: noBrowser }, async () => {
  const page = await open({ width: 300, height: 382, workbenchFont: true });
  await page.send(queueState(2, 6, { pairId: 'p0', position: { index: 1, count: 6 }, check: true }));
  await showsText(page, 'prompt-label', 'Prompt · pair 1 of 6 · quality check (sides swapped)');
  await page.page.keyboard.press('2');
  assert.deepEqual((await postedCount(page, 2))[1], { type: 'label', id: 0, pairId: 'p0', choice: 'right' });
  await page.close();
});

test(
  'labeling webview: / opens Find, typing and the status search the queue, arrows and Enter open a match',
  { skip: noBrowser },
  async () => {
    const page = await open({ width: 360, height: 600 });
    await page.send(queueState(1, 3, { pairId: 'p1' }));
    await showsText(page, 'response-left', 'Left of p1');
    await page.page.keyboard.press('/');
    assert.deepEqual(
      (await postedCount(page, 2))[1],
      { type: 'find', text: '', status: 'all' },
      'opening Find lists the queue',
    );
    await page.page.keyboard.type('cat');
    await page.page.waitForFunction(() =>
      (window as unknown as { __posted: ToHost[] }).__posted.some((m) => m.type === 'find' && m.text === 'cat'),
    );
    const finds = ((await page.posted()) as ToHost[]).filter((m) => m.type === 'find');
    assert.deepEqual(finds.at(-1), { type: 'find', text: 'cat', status: 'all' }, 'typing is sent once it pauses');
    await page.page.getByTestId('search-status').evaluate((select) => {
      (select as HTMLElement & { value: string }).value = 'a';
      select.dispatchEvent(new Event('change'));
    });
    assert.deepEqual((await page.posted()).at(-1), { type: 'find', text: 'cat', status: 'a' });
    const found: QueueState['found'] = {
      count: 2,
      pairs: [
        { pairId: 'p0', prompt: 'What does a cat eat?', status: 'a' },
        { pairId: 'p2', prompt: 'Is a cat a fish?', status: 'unlabeled' },
      ],
    };
    await page.send(queueState(1, 3, { pairId: 'p1' }, { found }));
    await showsText(page, 'search-count', '2 pairs match');
    await showsText(page, 'found-p0', 'Chosen: response_a What does a cat eat?');
    await page.page.getByTestId('search-text').focus();
    await page.page.keyboard.press('ArrowDown');
    await page.page.keyboard.press('ArrowDown');
    await page.page.keyboard.press('ArrowUp');
    const before = (await page.posted()).length;
    await page.page.keyboard.press('Enter');
    assert.deepEqual((await postedCount(page, before + 1))[before], { type: 'openPair', pairId: 'p0' });
    await page.send(queueState(1, 3, { pairId: 'p0', labeled: 'right' }, { found }));
    await showsText(page, 'prompt-label', 'Prompt · labeled: B better; a new choice replaces it');
    assert.deepEqual(await page.cspViolations(), []);
    await page.close();
  },
);

const RANKING: QueueState['ranking'] = {
  pairIds: ['q:0-1', 'q:0-2', 'q:0-3', 'q:1-2', 'q:1-3', 'q:2-3'],
  prompt: 'Name a cat',
  candidates: ['c0', 'c1', 'c2', 'c3'].map((id) => ({ id, text: `Answer **${id}**` })),
};

/** The candidate ids as the ranking list shows them, with their rank marks. */
const listed = (page: WebviewPage) =>
  page.page
    .getByTestId('ranking-list')
    .locator('li')
    .evaluateAll((items) => items.map((li) => `${li.querySelector('.rank')!.textContent} ${li.dataset.candidate}`));

test(
  'labeling webview: ranking mode orders the responses from the keyboard and sends the ranks',
  { skip: noBrowser },
  async () => {
    const page = await open({ width: 300, height: 382, workbenchFont: true });
    await page.send(queueState(0, 12, undefined, { mode: 'ranking', ranking: RANKING }));
    await showsText(page, 'ranking-label', 'Prompt · rank 4 responses for 6 pairs');
    assert.equal(await page.page.getByTestId('responses').isVisible(), false, 'no pair in ranking mode');
    assert.equal(await page.page.getByTestId('mode-toggle').getAttribute('aria-pressed'), 'true');
    assert.equal(
      await page.page.evaluate(() => document.activeElement?.getAttribute('data-candidate')),
      'c0',
      'the first response has the focus',
    );
    await page.page.keyboard.press('3'); // c0 to third place
    assert.deepEqual(await listed(page), ['1 c1', '2 c2', '3 c0', '4 c3']);
    await page.page.keyboard.press('ArrowDown'); // focus c3
    await page.page.keyboard.press('Alt+ArrowUp'); // c3 above c0
    await page.page.keyboard.press('Alt+ArrowUp'); // c3 above c2
    await page.page.keyboard.press('ArrowDown'); // focus c2
    await page.page.keyboard.press('t'); // c2 ties with c3
    assert.deepEqual(await listed(page), ['1 c1', '2 c3', '=2 c2', '4 c0']);
    await page.page.keyboard.press('Enter');
    assert.deepEqual((await postedCount(page, 2))[1], {
      type: 'rank',
      id: 0,
      pairIds: RANKING!.pairIds,
      ranks: [
        { candidate: 'c1', rank: 1 },
        { candidate: 'c3', rank: 2 },
        { candidate: 'c2', rank: 2 },
        { candidate: 'c0', rank: 4 },
      ],
    });
    await showsText(page, 'save-status', /Saving/);
    await page.send({ type: 'result', id: 0, ok: true });
    await showsText(page, 'save-status', /Saved: ranking/);
    await page.page.keyboard.press('s');
    assert.deepEqual((await postedCount(page, 3))[2], {
      type: 'rank',
      id: 1,
      pairIds: RANKING!.pairIds,
      ranks: 'skip',
    });
    await page.send({ type: 'result', id: 1, ok: true });
    await showsText(page, 'save-status', /Saved: prompt skipped/);
    await tabTo(page, 'mode-toggle');
    await page.page.keyboard.press('Enter');
    assert.deepEqual((await postedCount(page, 4))[3], { type: 'setMode', mode: 'pairwise' });
    const m = await measure(page);
    assert.deepEqual(m.scroll, m.view, 'fits the sidebar without scrolling the view');
    assert.deepEqual(await page.cspViolations(), []);
    await page.close();
  },
);

test('labeling webview: a response is ranked by dragging it', { skip: noBrowser }, async () => {
  const page = await open({ width: 600, height: 800 });
  await page.send(queueState(0, 6, undefined, { mode: 'ranking', ranking: RANKING }));
  await showsText(page, 'ranking-label', 'Prompt · rank 4 responses for 6 pairs');
  // The list is one Tab stop, at its first response.
  await page.page.getByTestId('mode-toggle').focus();
  const stops: (string | null)[] = [];
  for (let i = 0; i < 3; i++) {
    await page.page.keyboard.press('Shift+Tab');
    stops.push(await page.page.evaluate(() => document.activeElement?.getAttribute('data-testid') ?? null));
  }
  assert.deepEqual(stops, ['ranking-skip', 'ranking-save', 'candidate-c0']);
  await page.page.getByTestId('candidate-c3').dragTo(page.page.getByTestId('candidate-c0'));
  assert.deepEqual(await listed(page), ['1 c3', '2 c0', '3 c1', '4 c2']);
  await page.page.getByTestId('ranking-save').click();
  const sent = (await postedCount(page, 2))[1];
  assert.ok(sent.type === 'rank' && sent.ranks !== 'skip');
  assert.deepEqual(
    sent.ranks.map((r) => r.candidate),
    ['c3', 'c0', 'c1', 'c2'],
  );
  await page.close();
});

const MODEL = { name: 'pets Reward Model #1', accuracy: 0.75, scoring: true, disagreements: [], disagreementCount: 0 };

test(
  "labeling webview: the reward model's margin shows only after the label; a disagreement re-checked and relabeled by keyboard",
  { skip: noBrowser },
  async () => {
    const page = await open({ width: 360, height: 700 });
    await page.send(queueState(0, 3, { pairId: 'p0' }, { model: MODEL }));
    await showsText(page, 'model-name', 'pets Reward Model #1');
    await showsText(page, 'model-accuracy', '75% held-out accuracy');
    assert.equal(await page.page.getByTestId('model-scoring').isVisible(), true);
    // Before the label: nothing in the page says what the model makes of the pair.
    assert.equal(await page.page.getByTestId('model-latest').isVisible(), false);
    assert.doesNotMatch(await page.page.evaluate(() => document.body.textContent ?? ''), /prefers|agrees/);

    await page.page.keyboard.press('1');
    const [, label] = await postedCount(page, 2);
    if (label.type !== 'label') throw new Error('not a label');
    assert.equal(label.pairId, 'p0');
    const scored = { pairId: 'p0', prompt: 'Prompt of p0', choice: 'left' as const, margin: -2.5 };
    await page.send({ type: 'result', id: label.id, ok: true });
    await page.send(
      queueState(
        1,
        3,
        { pairId: 'p1' },
        {
          model: { ...MODEL, scoring: false, latest: scored, disagreements: [scored], disagreementCount: 1 },
        },
      ),
    );
    await showsText(page, 'model-latest', 'Last label: You chose A; the model prefers B by 2.50 (disagrees)');
    assert.equal(await page.page.getByTestId('model-scoring').isVisible(), false);
    await showsText(page, 'disagreements-summary', 'Disagreements (1)');

    // Open the list and the pair with the keyboard alone.
    await tabTo(page, 'disagreements-summary');
    await page.page.keyboard.press('Enter');
    await tabTo(page, 'disagreement');
    await page.page.keyboard.press('Enter');
    assert.deepEqual((await postedCount(page, 3))[2], { type: 'openPair', pairId: 'p0' });

    await page.send(
      queueState(
        1,
        3,
        { pairId: 'p0' },
        {
          model: { ...MODEL, scoring: false, latest: scored, disagreements: [scored], disagreementCount: 1 },
          review: { pairId: 'p0', choice: 'left', margin: -2.5 },
        },
      ),
    );
    await showsText(page, 'review-text', /Re-checking a labeled pair\. You chose A; the model prefers B by 2\.50/);
    await showsText(page, 'response-left', 'Left of p0');
    await page.page.keyboard.press('2');
    const relabel = (await postedCount(page, 4))[3];
    assert.deepEqual(relabel, { type: 'label', id: label.id + 1, pairId: 'p0', choice: 'right' });
    await page.send({ type: 'result', id: relabel.type === 'label' ? relabel.id : -1, ok: true });
    await page.send(queueState(1, 3, { pairId: 'p1' }, { model: { ...MODEL, scoring: false } }));
    await showsText(page, 'response-left', 'Left of p1');
    assert.equal(await page.page.getByTestId('review').isVisible(), false);
    await showsText(page, 'disagreements-summary', 'Disagreements (0)');

    // Back to the queue from a re-check, by keyboard.
    await page.send(queueState(1, 3, { pairId: 'p0' }, { review: { pairId: 'p0' } }));
    await showsText(page, 'review-text', /This pair is labeled\./);
    await tabTo(page, 'review-back');
    await page.page.keyboard.press('Enter');
    assert.deepEqual((await postedCount(page, 5))[4], { type: 'openPair' });
    assert.equal(await page.page.getByTestId('model-name').isVisible(), false, 'no model, no panel');
    assert.deepEqual(await page.cspViolations(), []);
    await page.close();
  },
);

test(
  'labeling webview: with Find and the disagreements open in a short sidebar the view scrolls, and nothing covers the pair or the list',
  { skip: noBrowser },
  async () => {
    const page = await open({ width: 300, height: 382, workbenchFont: true });
    const entry = (i: number) => ({ pairId: `d${i}`, prompt: `Question ${i}?`, choice: 'left' as const, margin: -3 });
    const model = {
      ...MODEL,
      scoring: false,
      latest: entry(0),
      disagreements: [entry(1), entry(2)],
      disagreementCount: 2,
    };
    const found = { count: 1, pairs: [{ pairId: 'd1', prompt: 'Question 1?', status: 'a' as const }] };
    await page.send(queueState(9, 12, { pairId: 'p9' }, { model, found }));
    await page.page.getByTestId('search-toggle').click();
    await page.page.getByTestId('disagreements-summary').click();
    const boxes = await page.page.evaluate(() =>
      Object.fromEntries(
        ['search-text', 'prompt', 'response-left', 'response-right', 'rationale', 'choice-left', 'model-name'].map(
          (id) => {
            const e = document.querySelector(`[data-testid="${id}"]`)!;
            const r = e.getBoundingClientRect();
            return [id, { top: r.top, bottom: r.bottom, width: r.width, whole: e.scrollHeight <= e.clientHeight }];
          },
        ),
      ),
    );
    const order = ['prompt', 'response-left', 'response-right', 'rationale', 'choice-left', 'model-name'];
    for (let i = 1; i < order.length; i++)
      assert.ok(boxes[order[i - 1]].bottom <= boxes[order[i]].top, `${order[i - 1]} ends above ${order[i]}`);
    for (const id of ['prompt', 'response-left', 'response-right'])
      assert.ok(boxes[id].whole, `${id} shows its one line whole`);
    assert.ok(boxes['search-text'].width >= 150, `the Find field has room to type (${boxes['search-text'].width} px)`);
    await page.page.locator('[data-testid="disagreement"][data-pair="d2"]').click({ timeout: 5000 });
    assert.deepEqual((await postedCount(page, 3)).at(-1), { type: 'openPair', pairId: 'd2' });
    await page.page.waitForFunction(() =>
      (window as unknown as { __posted: ToHost[] }).__posted.some((m) => m.type === 'layout' && !m.fits),
    );
    await page.close();
  },
);

test(
  'labeling webview: Generate from a Run is a keyboard-reachable toolbar button, and a pair shows the run it came from',
  { skip: noBrowser },
  async () => {
    const page = await open({ width: 300, height: 382, workbenchFont: true });
    await page.send(queueState(0, 2, { pairId: 'p0', source: 'pets DPO #2' }));
    await showsText(page, 'prompt-label', 'Prompt · from pets DPO #2');
    await tabTo(page, 'generate-from-run');
    await page.page.keyboard.press('Enter');
    assert.deepEqual((await postedCount(page, 2))[1], {
      type: 'runCommand',
      command: 'rlhf.generateComparisonsFromRun',
    });
    await page.send(queueState(0, 2, { pairId: 'p1' }));
    await showsText(page, 'prompt-label', 'Prompt');
    const m = await measure(page);
    assert.deepEqual(m.scroll, m.view, 'the toolbar button leaves the pair fitting the sidebar');
    assert.deepEqual(await page.cspViolations(), []);
    await page.close();
  },
);
