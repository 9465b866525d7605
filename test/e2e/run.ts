/**
 * `npm run test:e2e`: installs code-server (once, into .cache/), packages the VSIX, then runs the
 * VSIX contents test and the workbench scenarios one at a time (each starts its own workbench).
 * Screenshots and logs of failed scenarios go to test-results/e2e/.
 */
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { ROOT } from './fixtures';
import { RESULTS } from './workbench';

const started = Date.now();
const step = (what: string, run: () => void) => {
  const t = Date.now();
  run();
  console.log(`e2e: ${what} (${((Date.now() - t) / 1000).toFixed(0)} s)`);
};

step('code-server installed', () =>
  execFileSync('bash', [path.join(ROOT, 'scripts', 'install-code-server.sh')], {
    stdio: ['ignore', 'ignore', 'inherit'],
  }),
);
// Always a fresh VSIX: the scenarios must test this checkout, not an older package.
step('VSIX packaged', () =>
  execFileSync('npm', ['run', '--silent', 'package'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] }),
);
fs.rmSync(RESULTS, { recursive: true, force: true });

const files = process.argv.slice(2).length
  ? process.argv.slice(2)
  : fs
      .readdirSync(__dirname)
      .filter((f) => f.endsWith('.test.ts'))
      .sort()
      .map((f) => path.join(__dirname, f));
const tests = spawnSync(
  path.join(ROOT, 'node_modules', '.bin', 'tsx'),
  ['--test', '--test-concurrency=1', '--test-reporter=spec', ...files],
  { cwd: ROOT, stdio: 'inherit' },
);
console.log(`e2e: ${((Date.now() - started) / 1000).toFixed(0)} s in all`);
process.exit(tests.status ?? 1);
