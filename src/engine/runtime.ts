/**
 * Runs emitted ONNX graphs with onnxruntime-node on the chosen execution provider.
 * `auto` tries the GPU providers this platform can have, checks each on a tiny probe graph
 * against the CPU result, and falls back to CPU with the reason logged.
 */
import { execFile } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { MessageChannel } from 'worker_threads';
import * as ort from 'onnxruntime-node';
import { matmul, softmax, sum } from './ops';
import { OnnxModel, toOnnx } from './onnx';
import { DType, constant, input } from './tensor';
import { trainingMallocActive } from '../util/training-malloc';

// onnxruntime-node's Linux build carries a telemetry library which, unless this is set before the
// first session, writes /tmp/mat-debug-<pid>.log in every process that loads it.
process.env.ORT_DISABLE_TELEMETRY ??= '1';

export type Provider = 'cpu' | 'webgpu' | 'cuda' | 'dml' | 'coreml';
export type ProviderChoice = Provider | 'auto';
export const PROVIDERS: ProviderChoice[] = ['auto', 'cpu', 'webgpu', 'cuda', 'dml', 'coreml'];

export interface RuntimeOptions {
  provider?: ProviderChoice;
  /** CPU threads for one op; defaults to the machine's cores and is never set above them. */
  threads?: number;
  /** Fail at load time if a GPU provider cannot run every node itself (used by tests). */
  strict?: boolean;
  log?: (message: string) => void;
}

/** GPU providers worth trying on this platform, best first. */
function gpuCandidates(): Provider[] {
  switch (process.platform) {
    case 'win32':
      return [...cudaIfInstalled(), 'dml', 'webgpu'];
    case 'darwin':
      return ['coreml', 'webgpu'];
    default:
      return [...cudaIfInstalled(), ...(linuxGpuDevice() ? ['webgpu' as const] : [])];
  }
}

/**
 * Whether Linux shows a GPU device node. Without one, only a CPU-emulated Vulkan driver (Mesa's
 * lavapipe) can serve WebGPU, and that is far slower than the CPU provider, so `auto` skips it.
 */
function linuxGpuDevice(): boolean {
  const renderNodes = fs.existsSync('/dev/dri') && fs.readdirSync('/dev/dri').some((f) => f.startsWith('renderD'));
  return renderNodes || ['/dev/nvidia0', '/dev/dxg'].some((dev) => fs.existsSync(dev));
}

/** CUDA's provider library is not in the npm package; it is there only if the user installed it. */
function cudaIfInstalled(): Provider[] {
  const dir = path.join(
    path.dirname(require.resolve('onnxruntime-node')),
    '..',
    'bin',
    'napi-v6',
    process.platform,
    process.arch,
  );
  const lib = process.platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so';
  return fs.existsSync(path.join(dir, lib)) ? ['cuda'] : [];
}

/**
 * onnxruntime's session config entries for every session. The op threads sleep between parallel
 * sections instead of spinning: where other work shares the cores, spinning threads take the time
 * the working ones need (npm run bench:sft on 2 busy cores: KV-cache decoding 2.4× and an SFT step
 * 1.15× faster).
 */
const SESSION_CONFIG = { 'intra_op.allow_spinning': '0' };

export class Runtime {
  private constructor(
    readonly provider: Provider,
    readonly threads: number,
    private readonly strict: boolean,
    readonly log: (message: string) => void,
  ) {}

  static async create(options: RuntimeOptions = {}): Promise<Runtime> {
    const cores = os.availableParallelism();
    const threads = Math.max(1, Math.min(options.threads ?? cores, cores));
    const log = options.log ?? (() => {});
    const choice = options.provider ?? 'auto';
    if (choice !== 'auto') {
      const rt = new Runtime(choice, threads, options.strict ?? false, log);
      if (choice !== 'cpu') await rt.probe(); // fail early and clearly, not mid-training
      return rt;
    }
    for (const provider of gpuCandidates()) {
      const rt = new Runtime(provider, threads, options.strict ?? false, log);
      try {
        await rt.probe();
        log(`execution provider: ${provider}`);
        return rt;
      } catch (e) {
        log(`execution provider ${provider} unavailable: ${(e as Error).message.split('\n')[0]}`);
      }
    }
    log('execution provider: cpu');
    return new Runtime('cpu', threads, false, log);
  }

  /**
   * Whether malloc keeps freed memory for reuse in this process (src/util/training-malloc.ts): then
   * a host buffer freed and allocated again costs no page faults, and onnxruntime's arena is off.
   */
  readonly heapRetained = trainingMallocActive();

  /**
   * Whether training steps run the optimizer's update apart from the backward, by group of
   * parameters (see buildTrainGraph): on the CPU where malloc keeps freed memory, where it lowers
   * peak memory; with a malloc that maps large blocks afresh, the copies of each run's outputs
   * would cost more page faults than one graph's (npm run bench:sft).
   */
  get updatesApart(): boolean {
    return this.provider === 'cpu' && this.heapRetained;
  }

  /** Whether training state should stay on the device between steps (WebGPU's gpu-buffer tensors). */
  get keepsStateOnDevice(): boolean {
    return this.provider === 'webgpu';
  }

  /**
   * Creates a session for a model. Outputs named in `deviceOutputs` stay on the device (when the
   * provider keeps state there) and can be fed back as inputs; everything else comes back to the CPU.
   * Dispose device outputs when done with them (State does): see Program.
   * In strict mode, a graph that would need the CPU provider is refused, naming the nodes.
   */
  async load(model: OnnxModel, deviceOutputs: string[] = []): Promise<Program> {
    const options = this.sessionOptions();
    if (this.keepsStateOnDevice) {
      const keep = new Set(deviceOutputs);
      options.preferredOutputLocation = Object.fromEntries(
        model.outputs.map((o) => [o.name, keep.has(o.name) ? 'gpu-buffer' : 'cpu']),
      );
    }
    const strict = this.strict && this.provider !== 'cpu';
    if (strict) options.extra = { session: { ...SESSION_CONFIG, disable_cpu_ep_fallback: '1' } };
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(model.bytes, options);
    } catch (e) {
      if (!strict || !/fallback to CPU EP has been explicitly disabled/.test(String(e))) throw e;
      const nodes = await this.cpuNodes(model).then(
        (list) => list.join(', ') || "(onnxruntime's placement log named none)",
        (err: Error) => `(could not list them: ${err.message.split('\n')[0]})`,
      );
      throw new Error(
        `strict: CPU fallback is disabled, but with ${this.provider} onnxruntime places these nodes on CPU: ${nodes}`,
      );
    }
    return new Program(session, model, this.provider);
  }

  /** The options of every session this runtime loads (npm run bench:sft measured each choice). */
  sessionOptions(): ort.InferenceSession.SessionOptions {
    return {
      executionProviders: [this.provider],
      graphOptimizationLevel: 'all',
      intraOpNumThreads: this.threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      // Memory patterns keep one block per run sized for every intermediate of the graph at once:
      // for training steps that is about 30% more peak memory and no speed (npm run bench:sft).
      enableMemPattern: false,
      // Where malloc keeps what is freed for reuse, the arena would only hold a second pool.
      enableCpuMemArena: !this.heapRetained,
      logSeverityLevel: 3,
      extra: { session: SESSION_CONFIG },
    };
  }

  /**
   * The nodes ("OpType (node name)") that onnxruntime places on its CPU provider when `model` is
   * loaded on this provider with fallback allowed. Read from onnxruntime's verbose log of node
   * placements, which goes to the native stderr, so the model is loaded in a child process.
   * For explaining strict-mode failures; slow on large graphs.
   */
  async cpuNodes(model: OnnxModel): Promise<string[]> {
    if (this.provider === 'cpu') return [];
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rlhf-studio-placement-'));
    const file = path.join(dir, 'model.onnx');
    try {
      fs.writeFileSync(file, model.bytes);
      const script = `const ort = require(${JSON.stringify(require.resolve('onnxruntime-node'))});
        ort.InferenceSession.create(require('fs').readFileSync(process.argv[1]), { executionProviders: [process.argv[2]], graphOptimizationLevel: 'all', logSeverityLevel: 0 })
          .then((s) => s.release(), (e) => { console.error('LOAD FAILED: ' + e.message); process.exitCode = 1; });`;
      const stderr = await new Promise<string>((resolve, reject) => {
        execFile(
          process.execPath,
          ['-e', script, file, this.provider],
          { env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' }, maxBuffer: 1 << 30, timeout: 300_000 },
          (err, _stdout, stderr) =>
            err
              ? reject(new Error(stderr.split('\n').find((l) => l.startsWith('LOAD FAILED')) ?? err.message))
              : resolve(stderr),
        );
      });
      return parsePlacements(stderr).get('CPUExecutionProvider') ?? [];
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  /** Runs a tiny graph on this provider and checks it against the same graph on CPU. */
  private async probe(): Promise<void> {
    const x = input('x', 'float32', [2, 3]);
    const w = constant(Float32Array.from([0.5, -1, 2, 0.25, -0.5, 1.5]), 'float32', [3, 2]);
    const model = toOnnx({ y: sum(softmax(matmul(x, w), -1).mul(x.sum(1, true)), 0) }, 'probe');
    const feed = { x: hostTensor('float32', Float32Array.from([1, 2, 3, -1, 0.5, 2]), [2, 3]) };
    const cpu = await new Runtime('cpu', 1, false, this.log).load(model);
    let gpu: Program | undefined;
    try {
      gpu = await this.load(model);
      const want = (await cpu.run(feed)).y.data as Float32Array;
      const got = (await gpu.run(feed)).y.data as Float32Array;
      const worst = Math.max(...want.map((v, i) => Math.abs(v - got[i])));
      if (!(worst <= 1e-4)) throw new Error(`probe result differs from CPU by ${worst}`);
    } finally {
      await cpu.release();
      await gpu?.release();
    }
  }
}

/**
 * A loaded graph.
 *
 * Device outputs ('gpu-buffer' tensors) are freed through the session that made them: disposing
 * one after that session is released crashes the process. So `release()` leaves the session open
 * while any device output it returned is undisposed, and releases it when the last one is disposed
 * (a State that outlives its TrainStep keeps that step's session until the State lets go).
 */
export class Program {
  private readonly liveOutputs = new Set<ort.Tensor>();
  private releaseRequested = false;
  private closed = false;

  constructor(
    private readonly session: ort.InferenceSession,
    readonly model: OnnxModel,
    readonly provider: Provider,
  ) {}

  /** Whether the session is still loaded (release() was not called, or is waiting on device outputs). */
  get sessionOpen(): boolean {
    return !this.closed;
  }

  /**
   * Runs the graph on `feeds`. Outputs named in `into` are written into those host tensors (of
   * their shape), which may be inputs of the same run when the graph reads them first (see
   * step.ts's `overwritable`); the others come back as new tensors.
   */
  async run(
    feeds: Record<string, ort.Tensor>,
    into: Record<string, ort.Tensor> = {},
  ): Promise<Record<string, ort.Tensor>> {
    if (this.releaseRequested) throw new Error('this program was released');
    const missing = this.model.inputs.filter((i) => !(i.name in feeds)).map((i) => i.name);
    if (missing.length) throw new Error(`missing inputs: ${missing.join(', ')}`);
    const only: Record<string, ort.Tensor> = {};
    for (const i of this.model.inputs) {
      const t = feeds[i.name];
      if (t.type !== ORT_TYPE[i.dtype]) throw new Error(`input "${i.name}" must be ${i.dtype}, got ${t.type}`);
      if (t.location === 'gpu-buffer' && this.provider !== 'webgpu')
        throw new Error(`input "${i.name}" is a GPU tensor; a ${this.provider} session cannot read it`);
      if (t.location === 'none')
        throw new Error(`input "${i.name}" was disposed (a replaced or released state tensor?)`);
      only[i.name] = t;
    }
    const out = Object.keys(into).length
      ? await this.session.run(
          only,
          Object.fromEntries(
            this.model.outputs.map((o) => [o.name, into[o.name] ?? null]),
          ) as ort.InferenceSession.FetchesType,
        )
      : await this.session.run(only);
    for (const t of Object.values(out)) if (t.location === 'gpu-buffer') this.track(t);
    // onnxruntime-node hands back a copy of each output, even one written into a given tensor: that
    // copy is freed now rather than at some later garbage collection (for a training step it is a
    // second copy of every parameter and optimizer slot), and the given tensor returned instead.
    const result: Record<string, ort.Tensor> = { ...out };
    for (const [name, t] of Object.entries(into)) {
      if (out[name] !== t && out[name].location === 'cpu') free(out[name].data as ArrayBufferView);
      result[name] = t;
    }
    return result;
  }

  /** Releases the session now, or once the last of its device outputs is disposed. */
  async release(): Promise<void> {
    this.releaseRequested = true;
    if (this.liveOutputs.size === 0) await this.close();
  }

  private track(t: ort.Tensor): void {
    this.liveOutputs.add(t);
    const dispose = t.dispose.bind(t);
    t.dispose = () => {
      dispose();
      this.liveOutputs.delete(t);
      if (this.releaseRequested && this.liveOutputs.size === 0) void this.close().catch(() => {});
    };
  }

  private async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.session.release();
  }
}

/**
 * Frees the memory of `view` now: transferring an ArrayBuffer detaches it, and a transfer to a
 * closed port drops it (Node has no ArrayBuffer.prototype.transfer before version 21).
 */
function free(view: ArrayBufferView): void {
  const { buffer } = view;
  if (!(buffer instanceof ArrayBuffer) || view.byteOffset !== 0 || view.byteLength !== buffer.byteLength) return;
  const { port1 } = new MessageChannel();
  port1.close();
  port1.postMessage(null, [buffer]);
}

/** onnxruntime's verbose "Node placements" log: provider → nodes ("OpType (node name)"). */
export function parsePlacements(log: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let nodes: string[] | undefined;
  for (const line of log.split('\n')) {
    const at = line.indexOf('VerifyEachNodeIsAssignedToAnEp]');
    if (at < 0) continue;
    const text = line.slice(at + 'VerifyEachNodeIsAssignedToAnEp]'.length);
    const header = /(All nodes|Node\(s\)) placed on \[(\w+)\]\. Number of nodes: (\d+)/.exec(text);
    if (header) {
      // ORT lists the nodes only when they are split between providers.
      nodes = header[1] === 'All nodes' ? [`all ${header[3]} nodes`] : [];
      out.set(header[2], nodes);
    } else if (nodes && /^\s{2,}\S+ \(.*\)\s*$/.test(text)) {
      nodes.push(text.trim());
    }
  }
  return out;
}

const ORT_TYPE: Record<DType, ort.Tensor.Type> = {
  float32: 'float32',
  float64: 'float64',
  int32: 'int32',
  int64: 'int64',
  bool: 'bool',
};

type HostData = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array;

/** A CPU tensor for feeding a session. */
export function hostTensor(dtype: DType, data: HostData, dims: readonly number[]): ort.Tensor {
  return new ort.Tensor(ORT_TYPE[dtype], data as never, dims);
}

/** A scalar CPU tensor. */
export function hostScalar(value: number, dtype: 'float32' | 'float64' = 'float32'): ort.Tensor {
  return hostTensor(dtype, dtype === 'float64' ? Float64Array.of(value) : Float32Array.of(value), []);
}
