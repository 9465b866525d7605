/**
 * A training step as one graph: forward, backward, gradient clipping and the optimizer update.
 * Parameters and optimizer slots are inputs and their new values outputs, so the host threads the
 * state from one run to the next (on WebGPU it stays on the device between steps).
 */
import * as ort from 'onnxruntime-node';
import { grad } from './autodiff';
import { OnnxModel, toOnnx } from './onnx';
import { Optimizer, clipByGlobalNorm, globalNorm } from './optim';
import { Program, Runtime, hostScalar, hostTensor } from './runtime';
import { DType, ShapeError, Tensor, input, numel } from './tensor';

export interface TrainStepSpec {
  loss: Tensor;
  /** Trainable parameters: named float inputs of the graph. */
  params: Tensor[];
  optimizer: Optimizer;
  /** Clip gradients to this global norm (no clipping when omitted). */
  maxGradNorm?: number;
  /** Extra scalars computed in the same run (accuracy, mean reward...). */
  metrics?: Record<string, Tensor>;
}

export interface TrainGraph {
  model: OnnxModel;
  /** Inputs whose new values the step outputs: parameters, then optimizer slots. */
  state: { name: string; dtype: DType; shape: number[] }[];
  /** Scalar outputs reported per step. */
  scalars: string[];
}

/** Name of the output carrying the new value of state input `name`. */
export const nextName = (name: string) => `new:${name}`;

/** Builds the step graph; inputs `lr` and `step` (1-based) are scalars of the loss's dtype. */
export function buildTrainGraph(spec: TrainStepSpec): TrainGraph {
  const { loss, params, optimizer } = spec;
  for (const p of params) {
    if (p.op !== 'Input') throw new ShapeError(`train step: parameter ${p} must be a graph input`);
    if (p.shape.some((d) => typeof d !== 'number')) throw new ShapeError(`train step: parameter "${p.name}" needs a fixed shape, got [${p.shape}]`);
  }
  const lr = input('lr', loss.dtype, []);
  const step = input('step', loss.dtype, []);
  let grads = grad(loss, params);
  const gradNorm = globalNorm(grads);
  if (spec.maxGradNorm !== undefined) grads = clipByGlobalNorm(grads, gradNorm, spec.maxGradNorm);

  const outputs: Record<string, Tensor> = { loss, grad_norm: gradNorm, ...spec.metrics };
  const scalars = Object.keys(outputs);
  const state: TrainGraph['state'] = [];
  const slotState: TrainGraph['state'] = [];
  params.forEach((p, i) => {
    const slots = optimizer.slots.map((s) => input(`${s}.${p.name}`, p.dtype, p.shape));
    const next = optimizer.update(p, grads[i], slots, lr, step);
    outputs[nextName(p.name!)] = next.param;
    state.push({ name: p.name!, dtype: p.dtype, shape: p.shape as number[] });
    slots.forEach((s, k) => {
      outputs[nextName(s.name!)] = next.slots[k];
      slotState.push({ name: s.name!, dtype: s.dtype, shape: s.shape as number[] });
    });
  });
  return { model: toOnnx(outputs, 'train_step'), state: [...state, ...slotState], scalars };
}

/**
 * Named tensors that persist across runs (parameters, optimizer slots). On a provider that keeps
 * state on the device they are device tensors: replaced ones are disposed, and reading them
 * goes through a session whose outputs come back to the CPU (never getData() on a device tensor).
 */
export class State {
  private readonly tensors = new Map<string, ort.Tensor>();
  private readers = new Map<string, Program>();

  constructor(readonly runtime: Runtime) {}

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  get(name: string): ort.Tensor {
    const t = this.tensors.get(name);
    if (!t) throw new Error(`no state tensor "${name}"`);
    return t;
  }

  set(name: string, value: ort.Tensor): void {
    const old = this.tensors.get(name);
    if (old && old !== value && old.location === 'gpu-buffer') old.dispose();
    this.tensors.set(name, value);
  }

  /** Sets a float32 tensor from host data. */
  setHost(name: string, data: Float32Array, dims: readonly number[]): void {
    if (data.length !== numel(dims as number[])) throw new Error(`state "${name}": ${data.length} values for shape [${dims}]`);
    this.set(name, hostTensor('float32', data, dims));
  }

  names(): string[] {
    return [...this.tensors.keys()];
  }

  /** Copies the named tensors to host memory. */
  async read(names: string[]): Promise<Map<string, Float32Array | Float64Array>> {
    const out = new Map<string, Float32Array | Float64Array>();
    const onDevice = names.filter((n) => this.get(n).location === 'gpu-buffer');
    for (const n of names) if (!onDevice.includes(n)) out.set(n, this.get(n).data as Float32Array);
    if (onDevice.length) {
      const reader = await this.reader(onDevice);
      const res = await reader.run(Object.fromEntries(onDevice.map((n) => [n, this.get(n)])));
      for (const n of onDevice) out.set(n, res[`read:${n}`].data as Float32Array);
    }
    return out;
  }

  private async reader(names: string[]): Promise<Program> {
    const key = names.join('\n');
    let p = this.readers.get(key);
    if (!p) {
      const ins = names.map((n) => input(n, this.get(n).type as DType, this.get(n).dims as number[]));
      p = await this.runtime.load(toOnnx(Object.fromEntries(ins.map((t) => [`read:${t.name}`, t])), 'read_state'));
      this.readers.set(key, p);
    }
    return p;
  }

  /** Disposes the device tensors (letting released programs that made them close), then the readers. */
  async release(): Promise<void> {
    for (const t of this.tensors.values()) if (t.location === 'gpu-buffer') t.dispose();
    this.tensors.clear();
    for (const p of this.readers.values()) await p.release();
    this.readers.clear();
  }
}

/** A loaded training step bound to a State. Missing optimizer slots start at zero. */
export class TrainStep {
  private constructor(
    private readonly program: Program,
    private readonly graph: TrainGraph,
    readonly state: State,
  ) {}

  static async create(graph: TrainGraph, state: State): Promise<TrainStep> {
    for (const s of graph.state) {
      if (!state.has(s.name)) {
        if (s.dtype !== 'float32' && s.dtype !== 'float64') throw new Error(`state "${s.name}" has no initial value`);
        const zeros = s.dtype === 'float32' ? new Float32Array(numel(s.shape)) : new Float64Array(numel(s.shape));
        state.set(s.name, hostTensor(s.dtype, zeros, s.shape));
      }
    }
    const program = await state.runtime.load(graph.model, graph.state.map((s) => nextName(s.name)));
    return new TrainStep(program, graph, state);
  }

  /** Runs one step on a batch (named inputs) with learning rate `lr` at step `step` (1-based). */
  async run(batch: Record<string, ort.Tensor>, lr: number, step: number): Promise<Record<string, number>> {
    const dtype = this.graph.model.inputs.find((i) => i.name === 'lr')!.dtype as 'float32' | 'float64';
    const feeds: Record<string, ort.Tensor> = { ...batch, lr: hostScalar(lr, dtype), step: hostScalar(step, dtype) };
    for (const s of this.graph.state) feeds[s.name] = this.state.get(s.name);
    const out = await this.program.run(feeds);
    for (const s of this.graph.state) this.state.set(s.name, out[nextName(s.name)]);
    return Object.fromEntries(this.graph.scalars.map((k) => [k, Number((out[k].data as Float32Array)[0])]));
  }

  async release(): Promise<void> {
    await this.program.release();
  }
}
