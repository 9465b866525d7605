/**
 * Reward functions written in TypeScript or JavaScript, called from a Python trainer as they are
 * here: each file is bundled with its imports into `rewards/<stem>.cjs`; `rewards/bridge.cjs` is a
 * Node.js process that answers one JSON request per line; `reward_funcs.py` defines one Python
 * function per exported function, with TRL's reward-function signature, that forwards its call there.
 */
import * as fs from 'fs';
import * as path from 'path';
import { compileRewardFile, declarationLine } from '../util/reward-file';
import { pyLiteral } from './python';

/** One exported reward function as the Python module names it. */
export interface PythonRewardFunc {
  /** The Python function's name (the export's, made a valid identifier, unique in the module). */
  python: string;
  /** The bundle, relative to rewards/. */
  bundle: string;
  /** The export's name ("default" for a default export). */
  name: string;
  /** Where it is declared, for the docstring. */
  source: string;
}

export interface RewardBridge {
  /** Files of the export by relative path. */
  files: Map<string, string>;
  /** Per reward file, its functions in declaration order (the order reward_weights count them). */
  funcs: Map<string, PythonRewardFunc[]>;
}

/** The bridge's Node.js side: requests {bundle, name, args} → {rewards} or {error}, one JSON line each. */
const BRIDGE = `// Serves the experiment's reward functions to reward_funcs.py: one JSON request per line on stdin,
// one JSON reply per line on stdout. What the functions print goes to stderr.
'use strict';
const path = require('path');
const readline = require('readline');
process.setSourceMapsEnabled(true);
const reply = process.stdout.write.bind(process.stdout);
console.log = console.info = console.debug = console.error;
const modules = new Map();
const load = (bundle) => {
  if (!modules.has(bundle)) modules.set(bundle, require(path.join(__dirname, bundle)));
  return modules.get(bundle);
};
const metrics = () => {};
let queue = Promise.resolve();
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  queue = queue.then(async () => {
    let answer;
    try {
      const { bundle, name, args } = JSON.parse(line);
      const fn = load(bundle)[name];
      if (typeof fn !== 'function') throw new Error(bundle + ' exports no function ' + name);
      const rewards = Array.from(await fn({ ...args, logMetric: metrics }), (r) => (r === undefined ? null : r));
      answer = { rewards };
    } catch (e) {
      answer = { error: String((e && e.stack) || e) };
    }
    reply(JSON.stringify(answer) + '\\n');
  });
});
`;

const PYTHON_HEAD = `"""The experiment's reward functions, written in TypeScript/JavaScript, as Python reward functions.

Each function forwards its call to the original code, run by Node.js (18 or newer) in one
process started on first use (rewards/bridge.cjs), and returns one float (or None) per completion.
"""
import atexit
import json
import os
import subprocess

_HERE = os.path.dirname(os.path.abspath(__file__))
_bridge = None


def _process():
    global _bridge
    if _bridge is None or _bridge.poll() is not None:
        _bridge = subprocess.Popen(
            ["node", os.path.join(_HERE, "rewards", "bridge.cjs")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        atexit.register(_bridge.kill)
    return _bridge


def _jsonable(value):
    try:
        json.dumps(value)
        return True
    except (TypeError, ValueError):
        return False


def _call(bundle, name, prompts, completions, completion_ids, kwargs):
    state = kwargs.pop("trainer_state", None)
    args = {k: v for k, v in kwargs.items() if _jsonable(v)}
    args.update(prompts=prompts, completions=completions, completionIds=completion_ids)
    if state is not None:
        args["trainerState"] = {"global_step": state.global_step, "max_steps": state.max_steps}
    bridge = _process()
    bridge.stdin.write(json.dumps({"bundle": bundle, "name": name, "args": args}) + "\\n")
    bridge.stdin.flush()
    line = bridge.stdout.readline()
    if not line:
        raise RuntimeError("the reward functions' Node.js process exited: is node (18 or newer) on PATH?")
    reply = json.loads(line)
    if "error" in reply:
        raise RuntimeError(f"reward function {name}: {reply['error']}")
    return [None if r is None else float(r) for r in reply["rewards"]]
`;

const PY_KEYWORDS = new Set(
  'False None True and as assert async await break class continue def del elif else except finally for from global if import in is lambda nonlocal not or pass raise return try while with yield'.split(
    ' ',
  ),
);

/** `name` as a Python identifier. */
function pythonName(name: string): string {
  const id = name.replace(/[^A-Za-z0-9_]/g, '_').replace(/^(?=\d)/, '_');
  return PY_KEYWORDS.has(id) || id.startsWith('_') ? `${id}_` : id;
}

/** The exported names of a reward file, as the trainer orders them (by declaration line). */
async function exportedNames(file: string): Promise<{ name: string; line: number }[]> {
  const result = await compileRewardFile(file, { format: 'esm', write: false, outfile: 'names.mjs' });
  const names = Object.values(result.metafile.outputs).flatMap((o) => o.exports);
  const text = fs.readFileSync(file, 'utf8');
  return names.map((name) => ({ name, line: declarationLine(text, name) })).sort((a, b) => a.line - b.line);
}

/** The bridge for the reward files of a section (absolute paths); files shared by sections once. */
export async function rewardBridge(rewardFiles: string[]): Promise<RewardBridge> {
  const files = new Map<string, string>([['rewards/bridge.cjs', BRIDGE]]);
  const funcs = new Map<string, PythonRewardFunc[]>();
  const taken = new Set<string>();
  for (const file of [...new Set(rewardFiles)]) {
    const stem = path.basename(file).replace(/\.[^.]+$/, '');
    let bundle = `${pythonName(stem)}.cjs`;
    for (let n = 2; files.has(`rewards/${bundle}`); n++) bundle = `${pythonName(stem)}_${n}.cjs`;
    const built = await compileRewardFile(file, { format: 'cjs', write: false, outfile: bundle });
    files.set(`rewards/${bundle}`, built.outputFiles![0].text);
    const own: PythonRewardFunc[] = [];
    for (const { name, line } of await exportedNames(file)) {
      let python = pythonName(name === 'default' ? stem : name);
      if (taken.has(python)) python = pythonName(`${stem}_${python}`);
      taken.add(python);
      own.push({ python, bundle, name, source: `${path.basename(file)}:${line}` });
    }
    if (!own.length) throw new Error(`${file}: exports no function, so it gives no reward`);
    funcs.set(file, own);
  }
  files.set('reward_funcs.py', pythonModule([...funcs.values()].flat()));
  return { files, funcs };
}

function pythonModule(funcs: PythonRewardFunc[]): string {
  const defs = funcs.map((f) =>
    [
      '',
      '',
      `def ${f.python}(prompts, completions, completion_ids=None, **kwargs):`,
      `    """${f.name} of ${f.source}."""`,
      `    return _call(${pyLiteral(f.bundle)}, ${pyLiteral(f.name)}, prompts, completions, completion_ids, kwargs)`,
    ].join('\n'),
  );
  return `${PYTHON_HEAD}${defs.join('\n')}\n`;
}
