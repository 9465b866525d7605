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
import { DType, ShapeError, Tensor, input, numel, topoSort } from './tensor';

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
  /** The whole step in one graph. */
  model: OnnxModel;
  /**
   * With gradient accumulation: `grads` runs per micro-batch and adds its gradients into the
   * `grad.<param>` inputs; `apply` then updates from their mean (input `grad_scale` = 1/k).
   */
  accumulation?: { grads: OnnxModel; apply: OnnxModel };
  /** Inputs whose new values the step outputs: parameters, then optimizer slots. */
  state: { name: string; dtype: DType; shape: number[] }[];
  /** The state whose new value `model` (and `apply`) may write over the old one (see `overwritable`). */
  overwrites: string[];
  /** Scalar outputs reported per step. */
  scalars: string[];
}

/** Name of the output carrying the new value of state input `name`. */
export const nextName = (name: string) => `new:${name}`;

const accumulatorName = (param: Tensor) => `grad.${param.name}`;

/**
 * Builds the step graph; inputs `lr` and `step` (1-based) are scalars of the loss's dtype. With
 * `accumulate`, also the pair of graphs for gradient accumulation over micro-batches.
 */
export function buildTrainGraph(spec: TrainStepSpec & { accumulate?: boolean }): TrainGraph {
  const { loss, params } = spec;
  for (const p of params) {
    if (p.op !== 'Input') throw new ShapeError(`train step: parameter ${p} must be a graph input`);
    if (p.shape.some((d) => typeof d !== 'number'))
      throw new ShapeError(`train step: parameter "${p.name}" needs a fixed shape, got [${p.shape}]`);
  }
  const grads = grad(loss, params);
  const update = optimizerUpdate(spec, grads);
  const stepOutputs = { loss, ...spec.metrics, ...update.outputs };
  const stateNames = update.state.map((s) => s.name);
  const graph: TrainGraph = {
    model: toOnnx(stepOutputs, 'train_step'),
    state: update.state,
    scalars: ['loss', 'grad_norm', ...Object.keys(spec.metrics ?? {})],
    overwrites: overwritable(stepOutputs, stateNames),
  };
  if (spec.accumulate) {
    const sums = params.map((p) => input(accumulatorName(p), p.dtype, p.shape));
    const added = Object.fromEntries(params.map((p, i) => [nextName(accumulatorName(p)), sums[i].add(grads[i])]));
    const scale = input('grad_scale', loss.dtype, []);
    const applied = optimizerUpdate(
      spec,
      sums.map((g) => g.mul(scale)),
    ).outputs;
    graph.accumulation = {
      grads: toOnnx({ loss, ...spec.metrics, ...added }, 'accumulate_gradients'),
      apply: toOnnx(applied, 'apply_gradients'),
    };
    const both = new Set(overwritable(applied, stateNames));
    graph.overwrites = graph.overwrites.filter((n) => both.has(n));
  }
  return graph;
}

/** Clipping and the optimizer's update of every parameter from `grads`, as named outputs. */
function optimizerUpdate(spec: TrainStepSpec, grads: Tensor[]) {
  const { loss, params, optimizer } = spec;
  const lr = input('lr', loss.dtype, []);
  const step = input('step', loss.dtype, []);
  const gradNorm = globalNorm(grads);
  if (spec.maxGradNorm !== undefined) grads = clipByGlobalNorm(grads, gradNorm, spec.maxGradNorm);
  const outputs: Record<string, Tensor> = { grad_norm: gradNorm };
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
  return { outputs, state: [...state, ...slotState] };
}

/** Ops whose output onnxruntime makes a view of their input's memory, not a copy. */
const VIEWS = new Set(['Identity', 'Reshape', 'Squeeze', 'Unsqueeze', 'Flatten']);
/** Ops that read each element of their inputs only to write the same element of their output. */
const ELEMENTWISE = new Set(['Add', 'Sub', 'Mul', 'Div']);

/**
 * The state inputs whose new value can be written over the old value's memory within the same
 * run, so a step holds one copy of the parameters and optimizer slots, not two: those whose new
 * value an elementwise op of the same shape writes, after every op that reads the old value (each
 * reader, and each reader of a view of it, is an ancestor of the new value, so it has run).
 */
export function overwritable(outputs: Record<string, Tensor>, stateNames: string[]): string[] {
  const order = topoSort(Object.values(outputs));
  const readers = new Map<number, Tensor[]>();
  for (const t of order)
    for (const i of t.inputs) {
      if (!readers.has(i.id)) readers.set(i.id, []);
      readers.get(i.id)!.push(t);
    }
  const byName = new Map(order.filter((t) => t.op === 'Input').map((t) => [t.name!, t]));
  const candidates = stateNames.filter((name) => {
    const old = byName.get(name),
      next = outputs[nextName(name)];
    return old && next && ELEMENTWISE.has(next.op) && next.shape.join() === old.shape.join();
  });
  // Which new values each tensor reaches, as bits (one per candidate), in one pass from the outputs back.
  const words = Math.ceil(candidates.length / 32);
  const reach = new Map<number, Uint32Array>();
  candidates.forEach((name, k) => {
    const id = outputs[nextName(name)].id;
    const bits = reach.get(id) ?? new Uint32Array(words);
    bits[k >> 5] |= 1 << (k & 31);
    reach.set(id, bits);
  });
  for (let i = order.length - 1; i >= 0; i--) {
    const bits = reach.get(order[i].id);
    if (!bits) continue;
    for (const input of order[i].inputs) {
      const into = reach.get(input.id) ?? new Uint32Array(words);
      for (let w = 0; w < words; w++) into[w] |= bits[w];
      reach.set(input.id, into);
    }
  }
  const readersOf = (t: Tensor): Tensor[] =>
    (readers.get(t.id) ?? []).flatMap((r) => (VIEWS.has(r.op) ? [r, ...readersOf(r)] : [r]));
  return candidates.filter((name, k) => {
    const next = outputs[nextName(name)];
    // Every reader but the writer itself reaches the new value: it runs before the write.
    return readersOf(byName.get(name)!).every(
      (r) => r === next || ((reach.get(r.id)?.[k >> 5] ?? 0) & (1 << (k & 31))) !== 0,
    );
  });
}

/**
 * Named tensors that persist across runs (parameters, optimizer slots). On a provider that keeps
 * state on the device they are device tensors: replaced ones are disposed, and reading them
 * goes through a session whose outputs come back to the CPU (never getData() on a device tensor).
 */
export class State {
  private readonly tensors = new Map<string, ort.Tensor>();
  private readers = new Map<string, Program>();
  /** Host tensors whose memory no one outside this State has seen: safe to overwrite in place. */
  private readonly owned = new WeakSet<ort.Tensor>();

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

  /** Sets a host tensor that only this State holds (its memory may be overwritten in place). */
  setOwned(name: string, value: ort.Tensor): void {
    this.set(name, value);
    this.owned.add(value);
  }

  /**
   * The host tensor `name`, to be overwritten in place by a run: copied first (once) when its
   * memory may be held elsewhere (set from outside, or handed out by `read`).
   */
  overwritable(name: string): ort.Tensor {
    const t = this.get(name);
    if (this.owned.has(t)) return t;
    const own = hostTensor(t.type as DType, (t.data as Float32Array | Float64Array).slice(), t.dims);
    this.setOwned(name, own);
    return own;
  }

  /** Sets a float32 tensor from host data. */
  setHost(name: string, data: Float32Array, dims: readonly number[]): void {
    if (data.length !== numel(dims as number[]))
      throw new Error(`state "${name}": ${data.length} values for shape [${dims}]`);
    this.set(name, hostTensor('float32', data, dims));
  }

  names(): string[] {
    return [...this.tensors.keys()];
  }

  /**
   * `feeds`, plus the state tensor of each input of `program` that `feeds` does not give: the
   * parameters of every model the state holds, trained or frozen, and the optimizer's slots.
   */
  feedsFor(program: Program, feeds: Record<string, ort.Tensor> = {}): Record<string, ort.Tensor> {
    const all = { ...feeds };
    for (const { name } of program.model.inputs) {
      const t = this.tensors.get(name);
      if (!(name in all) && t) all[name] = t;
    }
    return all;
  }

  /** Copies the named tensors to host memory. */
  async read(names: string[]): Promise<Map<string, Float32Array | Float64Array>> {
    const out = new Map<string, Float32Array | Float64Array>();
    const onDevice = names.filter((n) => this.get(n).location === 'gpu-buffer');
    for (const n of names)
      if (!onDevice.includes(n)) {
        // The caller now holds this memory: a later in-place run must not change it under them.
        this.owned.delete(this.get(n));
        out.set(n, this.get(n).data as Float32Array);
      }
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
    private readonly programs: { step?: Program; grads?: Program; apply?: Program },
    private readonly graph: TrainGraph,
    readonly state: State,
  ) {}

  static async create(graph: TrainGraph, state: State): Promise<TrainStep> {
    for (const s of graph.state) {
      if (!state.has(s.name)) {
        if (s.dtype !== 'float32' && s.dtype !== 'float64') throw new Error(`state "${s.name}" has no initial value`);
        state.setOwned(s.name, hostTensor(s.dtype, zerosOf(s.dtype, numel(s.shape)), s.shape));
      }
    }
    const updated = graph.state.map((s) => nextName(s.name));
    const runtime = state.runtime;
    if (!graph.accumulation) return new TrainStep({ step: await runtime.load(graph.model, updated) }, graph, state);
    const sums = graph.accumulation.grads.outputs.map((o) => o.name).filter((n) => n.startsWith(nextName('grad.')));
    const programs = {
      grads: await runtime.load(graph.accumulation.grads, sums),
      apply: await runtime.load(graph.accumulation.apply, updated),
    };
    return new TrainStep(programs, graph, state);
  }

  /**
   * One optimizer step with learning rate `lr` at step `step` (1-based), on a batch (named inputs)
   * or, when built with accumulation, on several micro-batches whose gradients are averaged.
   * Returns the scalars, averaged over micro-batches.
   */
  async run(
    batches: Record<string, ort.Tensor> | Record<string, ort.Tensor>[],
    lr: number,
    step: number,
  ): Promise<Record<string, number>> {
    const micro = Array.isArray(batches) ? batches : [batches];
    const { step: fused, grads, apply } = this.programs;
    const hyper = this.hyperparameters(lr, step);
    if (fused) {
      if (micro.length !== 1)
        throw new Error(
          `this training step takes one batch (it was built without gradient accumulation), got ${micro.length}`,
        );
      const into = this.overwritten();
      const out = await fused.run(this.state.feedsFor(fused, { ...micro[0], ...hyper }), into);
      this.keepState(out, into);
      return this.scalars(out, this.graph.scalars);
    }
    const sumsSpec = grads!.model.inputs.filter((i) => i.name.startsWith('grad.'));
    let sums: Record<string, ort.Tensor> = Object.fromEntries(
      sumsSpec.map((i) => [
        i.name,
        hostTensor(i.dtype, zerosOf(i.dtype, numel(i.shape as number[])), i.shape as number[]),
      ]),
    );
    const totals: Record<string, number> = {};
    for (const batch of micro) {
      const out = await grads!.run(this.state.feedsFor(grads!, { ...batch, ...sums }));
      for (const t of Object.values(sums)) if (t.location === 'gpu-buffer') t.dispose();
      sums = Object.fromEntries(sumsSpec.map((i) => [i.name, out[nextName(i.name)]]));
      const values = this.scalars(
        out,
        this.graph.scalars.filter((k) => k !== 'grad_norm'),
      );
      for (const [k, v] of Object.entries(values)) totals[k] = (totals[k] ?? 0) + v / micro.length;
    }
    const scaleType = hyper.lr.type as 'float32' | 'float64';
    const into = this.overwritten();
    const out = await apply!.run(
      this.state.feedsFor(apply!, { ...hyper, ...sums, grad_scale: hostScalar(1 / micro.length, scaleType) }),
      into,
    );
    for (const t of Object.values(sums)) if (t.location === 'gpu-buffer') t.dispose();
    this.keepState(out, into);
    return { ...totals, ...this.scalars(out, ['grad_norm']) };
  }

  private hyperparameters(lr: number, step: number) {
    const dtype = this.graph.model.inputs.find((i) => i.name === 'lr')!.dtype as 'float32' | 'float64';
    return { lr: hostScalar(lr, dtype), step: hostScalar(step, dtype) };
  }

  /**
   * The outputs written over their state tensor's memory (host state on the CPU provider only): the
   * run updates the parameters and optimizer slots in place instead of holding a second copy of them.
   * A GPU provider copies its outputs back after the run, so it gets fresh output tensors.
   */
  private overwritten(): Record<string, ort.Tensor> {
    if (this.state.runtime.provider !== 'cpu') return {};
    const host = this.graph.overwrites.filter((n) => this.state.get(n).location === 'cpu');
    return Object.fromEntries(host.map((n) => [nextName(n), this.state.overwritable(n)]));
  }

  /** Takes the new state from `out`, except where the run wrote it `into` the state's own tensors. */
  private keepState(out: Record<string, ort.Tensor>, into: Record<string, ort.Tensor>): void {
    for (const s of this.graph.state) if (!(nextName(s.name) in into)) this.state.set(s.name, out[nextName(s.name)]);
  }

  private scalars(out: Record<string, ort.Tensor>, names: string[]): Record<string, number> {
    return Object.fromEntries(names.map((k) => [k, Number((out[k].data as Float32Array)[0])]));
  }

  async release(): Promise<void> {
    for (const p of Object.values(this.programs)) await p?.release();
  }
}

function zerosOf(dtype: DType, n: number): Float32Array | Float64Array {
  return dtype === 'float64' ? new Float64Array(n) : new Float32Array(n);
}
