/**
 * The extension's services for tests that start real training processes through VS Code's command
 * handlers (test/unit/vscode-stub.ts must be imported first: the modules are loaded here on use).
 */
import * as path from 'path';
import type { Services } from '../../src/services';
import { vscode } from '../unit/vscode-stub';

const root = path.resolve(__dirname, '..', '..');

/**
 * The services, with the stub's log: a supervisor starting training processes from the sources
 * (through tsx), the workspace's runs and a log.
 */
export async function trainingServices(env?: NodeJS.ProcessEnv) {
  const { RunSupervisor } = await import('../../src/runner/supervisor');
  const { WorkspaceRuns } = await import('../../src/views/workspaceRuns');
  const entry = path.join(root, 'src', 'runner', 'train-process.ts');
  const processOptions = { entry, execArgv: ['--import', 'tsx'], cwd: root, ...(env && { env }) };
  const supervisor = new RunSupervisor(processOptions);
  const runs = new WorkspaceRuns(supervisor);
  const log = vscode.window.createOutputChannel('test');
  const services = { supervisor, runs, log, processOptions, extensionPath: root } as unknown as Services;
  return { services, supervisor, runs, log };
}
