/** The CLI follows the terminal's locale: Chinese help and messages under a zh locale, English otherwise. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { bundleLanguage } from '../../src/cli/language';
import { scratchFolder } from '../helpers/checkpoints';
import { cliIn } from '../helpers/processes';

const { freshDir } = scratchFolder('cli-language');

test('a POSIX locale picks the bundle: LC_ALL over LC_MESSAGES over LANG, Chinese for zh only', () => {
  assert.equal(bundleLanguage({ LANG: 'zh_CN.UTF-8' }), 'zh-cn');
  assert.equal(bundleLanguage({ LANG: 'zh_TW.UTF-8' }), 'zh-cn');
  assert.equal(bundleLanguage({ LANG: 'zh' }), 'zh-cn');
  assert.equal(bundleLanguage({ LANG: 'en_US.UTF-8' }), undefined);
  assert.equal(bundleLanguage({ LANG: 'zu_ZA.UTF-8' }), undefined);
  assert.equal(bundleLanguage({}), undefined);
  assert.equal(bundleLanguage({ LC_ALL: 'C', LANG: 'zh_CN.UTF-8' }), undefined);
  assert.equal(bundleLanguage({ LC_MESSAGES: 'zh_CN.UTF-8', LANG: 'en_US.UTF-8' }), 'zh-cn');
});

test('rlhf --help and a command message in Chinese under LANG=zh_CN.UTF-8, in English under en_US', async () => {
  const dir = freshDir();
  fs.mkdirSync(dir, { recursive: true });
  const zh = await cliIn({ LANG: 'zh_CN.UTF-8' }, dir, 'sft', '--help').exit;
  assert.equal(zh.code, 0, zh.output);
  assert.match(zh.output, /^用法： rlhf sft/m);
  assert.match(zh.output, /监督微调，按实验配置的 "sft" 部分设置/);
  assert.match(zh.output, /--steps <n> +覆盖 max_steps/);
  const en = await cliIn({ LANG: 'en_US.UTF-8' }, dir, 'sft', '--help').exit;
  assert.match(en.output, /^Usage: rlhf sft/m);
  assert.match(en.output, /supervised fine-tuning, as set in the "sft" section/);

  const prefs = path.join(dir, 'prefs.jsonl');
  fs.writeFileSync(prefs, '{"prompt":"Q","chosen":" a","rejected":" b"}\n');
  const exported = await cliIn({ LANG: 'zh_CN.UTF-8' }, dir, 'prefs', 'export', prefs, path.join(dir, 'out.jsonl'))
    .exit;
  assert.equal(exported.code, 0, exported.output);
  assert.match(exported.output, /已将 1 条比较导出到 .*out\.jsonl/);
});
