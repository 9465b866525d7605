/**
 * The integration suite (test/integration/suite.ts) in code-server's extension host, against the
 * installed VSIX: where no desktop VS Code can be had, it still runs here.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { test } from 'node:test';
import { bundleSuite, prepareIntegrationWorkspace } from '../integration/workspace';
import { eventually } from './fixtures';
import { inWorkbench } from './workbench';

test("the integration suite passes in the workbench's extension host", { timeout: 300_000 }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rlhf-suite-'));
  try {
    const suite = path.join(dir, 'suite.js');
    await bundleSuite(suite);
    await inWorkbench(
      t,
      prepareIntegrationWorkspace,
      async (wb) => {
        const summary = await eventually(
          'the suite\'s "N passed, N failed" line',
          () =>
            wb.console
              .map((line) => /(\d+) passed, (\d+) failed/.exec(line))
              .find((match): match is RegExpExecArray => match !== null),
          240_000,
        );
        const results = wb.console.map((line) => /[✔✖] .*/s.exec(line)?.[0]).filter((line): line is string => !!line);
        for (const line of results) t.diagnostic(line.split('\n')[0]);
        assert.equal(Number(summary[2]), 0, results.filter((line) => line.startsWith('✖')).join('\n'));
        assert.ok(Number(summary[1]) > 0, 'the suite ran its checks');
      },
      { extensionTests: suite },
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
