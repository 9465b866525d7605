/**
 * glibc malloc settings for a process that trains. A training step allocates and frees gigabytes
 * of tensors each run (onnxruntime's intermediates, and the binding's copy of every output).
 * By default glibc maps each large block fresh from the kernel and unmaps it when freed, so every
 * page of it is faulted in and zeroed again on every step; one heap that is never trimmed and
 * takes no mapped blocks reuses what was freed instead. onnxruntime's own CPU arena, which grows
 * in doubling chunks, is then only extra memory, so the runtime turns it off where these settings
 * are in effect (npm run bench:sft --preset gpt2-124m, 2 cores: step 3.3 s → 1.9 s, peak RSS
 * 4045 → ~3400 MB).
 *
 * The per-thread cache is off too. onnxruntime allocates its tensors 64-byte aligned, and glibc's
 * memalign frees the few bytes in front of each block into that cache, which never merges them
 * with their neighbours: two freed tensors side by side stay two holes, each a little too small for
 * the next tensor of their size (memalign asks for the size plus the alignment), so a chain of
 * same-sized temporaries grew the heap by a tensor a link (GPT-2 124M's loss over its vocabulary:
 * peak RSS 2719 → 2599 MB with the cache off).
 *
 * The settings reach glibc only through the environment a process starts with: the host starts its
 * training processes with them, and the CLI restarts itself with them. Electron's own allocator
 * replaces malloc, so under Electron (VS Code's desktop extension host) they do nothing.
 */
import { spawn } from 'child_process';
import { Worker } from 'worker_threads';

const SETTINGS: Record<string, string> = {
  'glibc.malloc.arena_max': '1',
  'glibc.malloc.mmap_max': '0',
  'glibc.malloc.trim_threshold': String(2 ** 46),
  'glibc.malloc.tcache_count': '0',
};

const TUNABLES = 'GLIBC_TUNABLES';

/** GLIBC_TUNABLES as settings; a later entry wins, as in glibc. */
function parseTunables(value: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const entry of (value ?? '').split(':')) {
    const at = entry.indexOf('=');
    if (at > 0) out.set(entry.slice(0, at), entry.slice(at + 1));
  }
  return out;
}

/** `env` with the training settings in GLIBC_TUNABLES; other tunables in it are kept. */
export function withTrainingMalloc(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const tunables = parseTunables(env[TUNABLES]);
  for (const [k, v] of Object.entries(SETTINGS)) tunables.set(k, v);
  return { ...env, [TUNABLES]: [...tunables].map(([k, v]) => `${k}=${v}`).join(':') };
}

/** `env` without the training settings (for a process to be measured as its users run it). */
export function withoutTrainingMalloc(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const tunables = parseTunables(env[TUNABLES]);
  for (const k of Object.keys(SETTINGS)) tunables.delete(k);
  const { [TUNABLES]: _, ...rest } = env;
  return tunables.size ? { ...rest, [TUNABLES]: [...tunables].map(([k, v]) => `${k}=${v}`).join(':') } : rest;
}

let glibc: boolean | undefined;

/** Whether malloc here is glibc's: Node on glibc Linux, not Electron (whose allocator replaces it). */
function mallocIsGlibc(): boolean {
  if (glibc === undefined) {
    const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
    glibc = process.platform === 'linux' && !process.versions.electron && Boolean(report?.header?.glibcVersionRuntime);
  }
  return glibc;
}

/** Whether this process started with the training settings and glibc applies them. */
export function trainingMallocActive(env: NodeJS.ProcessEnv = process.env): boolean {
  const tunables = parseTunables(env[TUNABLES]);
  return mallocIsGlibc() && Object.entries(SETTINGS).every(([k, v]) => tunables.get(k) === v);
}

/** Set in the restarted program's environment: the process that restarted it. */
const RESTARTED_BY = 'RLHF_STUDIO_RESTARTED_BY';

/**
 * Where glibc would apply the settings but this process started without them, starts this same
 * program again with them (stdio shared, signals passed on, its exit status passed back) and returns
 * true: the caller then does nothing more. Returns false where the settings are in effect or cannot
 * be; in a restarted program, after arranging that it ends with the process that started it.
 */
export function restartWithTrainingMalloc(): boolean {
  if (process.env[RESTARTED_BY]) endWithParent(Number(process.env[RESTARTED_BY]));
  if (!mallocIsGlibc() || trainingMallocActive()) return false;
  // In a process group of its own, so a terminal's Ctrl+C reaches it once, passed on from here.
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...withTrainingMalloc(process.env), [RESTARTED_BY]: String(process.pid) },
    detached: true,
  });
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  for (const s of signals) process.on(s, forward);
  child.on('exit', (code, signal) => {
    for (const s of signals) process.off(s, forward);
    if (signal) process.kill(process.pid, signal);
    else process.exit(code ?? 1);
  });
  return true;
}

/**
 * Ends this process (SIGKILL, as its parent was) once process `parent` is no longer its parent: a
 * parent killed outright cannot pass that on. Watched from a worker thread every 50 ms, since a
 * training step keeps the main thread busy for seconds.
 */
function endWithParent(parent: number): void {
  const watch = `setInterval(() => { if (process.ppid !== ${parent}) process.kill(${process.pid}, 'SIGKILL'); }, 50);`;
  new Worker(watch, { eval: true }).unref();
}
