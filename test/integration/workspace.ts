/** What the integration suite needs around it: its workspace, and itself bundled for an extension host. */
import * as esbuild from 'esbuild';
import * as fs from 'fs';
import * as path from 'path';
import { MALFORMED_PREFERENCES, tinySft, writeExperiment } from '../e2e/fixtures';

/**
 * exp/ (tiny SFT, and a reward model on a malformed preference file), long/ (an SFT run long
 * enough to stop) and broken/ (an experiment file that is not JSON).
 */
export function prepareIntegrationWorkspace(workspace: string): void {
  const cpu = { provider: 'cpu' }; // CI has no GPU; `auto` would first probe WebGPU
  writeExperiment(workspace, 'exp', {
    runtime: cpu,
    sft: tinySft(10),
    rm: { data: 'preferences.jsonl', max_steps: 5, logging_steps: 1, eval_steps: 5, save_steps: 5 },
  });
  fs.writeFileSync(path.join(workspace, 'exp', 'preferences.jsonl'), MALFORMED_PREFERENCES);
  writeExperiment(workspace, 'long', { runtime: cpu, sft: tinySft(100_000) });
  const broken = writeExperiment(workspace, 'broken', { runtime: cpu, sft: tinySft(10) });
  fs.writeFileSync(broken, fs.readFileSync(broken, 'utf8').replace(/\}\s*$/, ''));
}

/** Extension hosts load plain JavaScript: suite.ts bundled into `outfile`, with `vscode` left to the host. */
export async function bundleSuite(outfile: string): Promise<void> {
  await esbuild.build({
    entryPoints: [path.join(__dirname, 'suite.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: ['vscode'],
  });
}
