/**
 * Measures the bundled extension's activation in plain Node with the test stub of `vscode`:
 * loading dist/extension.js plus activate(), the part that runs on the extension host's thread.
 * Also fails if activation pulled in onnxruntime. Run `npm run build` first.
 */
import { workbench } from '../test/unit/vscode-stub';
import * as path from 'path';
import { performance } from 'perf_hooks';

const root = path.resolve(__dirname, '..');
workbench.setFolders([root]);
const started = performance.now();
const extension = require(path.join(root, 'dist', 'extension.js')) as { activate(context: unknown): void };
const loaded = performance.now();
extension.activate(workbench.context(root));
const activated = performance.now();

const onnx = Object.keys(require.cache).filter((m) => m.includes('onnxruntime'));
console.log(
  `load dist/extension.js ${(loaded - started).toFixed(1)} ms + activate() ${(activated - loaded).toFixed(1)} ms = ${(activated - started).toFixed(1)} ms`,
);
if (onnx.length) {
  console.error(`activation loaded onnxruntime: ${onnx.join(', ')}`);
  process.exit(1);
}
