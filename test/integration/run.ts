/**
 * `npm run test:integration`: the integration suite (suite.ts) in a desktop VS Code through
 * @vscode/test-electron. It needs a VS Code binary in VSCODE_EXECUTABLE (nothing is downloaded)
 * and the bundles in dist/ (`npm run build`); without a binary it skips. The end-to-end tests run
 * the same suite in code-server's extension host.
 */
import { runTests } from '@vscode/test-electron';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ROOT } from '../e2e/fixtures';
import { bundleSuite, prepareIntegrationWorkspace } from './workspace';

async function main(): Promise<void> {
  const executable = process.env.VSCODE_EXECUTABLE;
  if (!executable) {
    console.log(
      'integration: skipped: set VSCODE_EXECUTABLE to a VS Code binary to run this suite (it cannot be downloaded here)',
    );
    return;
  }
  if (!fs.existsSync(executable)) throw new Error(`VSCODE_EXECUTABLE=${executable} does not exist`);
  if (!fs.existsSync(path.join(ROOT, 'dist', 'extension.js')))
    throw new Error('dist/extension.js is missing: run npm run build first');

  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'rlhf-integration-'));
  try {
    const suite = path.join(home, 'suite.js');
    await bundleSuite(suite);
    const workspace = path.join(home, 'workspace');
    prepareIntegrationWorkspace(workspace);
    await runTests({
      vscodeExecutablePath: executable,
      extensionDevelopmentPath: ROOT,
      extensionTestsPath: suite,
      launchArgs: [
        workspace,
        '--disable-extensions',
        '--disable-workspace-trust',
        '--skip-welcome',
        '--user-data-dir',
        path.join(home, 'user-data'),
        '--extensions-dir',
        path.join(home, 'extensions'),
      ],
    });
  } finally {
    fs.rmSync(home, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(`integration: ${(e as Error).message}`);
  process.exit(1);
});
