/**
 * A training step as graphs: one for the forward and backward passes, which writes every
 * parameter's gradient (and their global norm), and the optimizer's update in groups of
 * parameters, each its own graph. Parameters, optimizer slots and gradients are inputs and their
 * new values outputs, so the host threads the state from one run to the next (on WebGPU it stays
 * on the device between steps).
 *
 * The update is split off and grouped for memory: onnxruntime-node hands back a fresh copy of every
 * output of a run, so one graph that updated the whole model would hold a second copy of every
 * parameter and optimizer slot at the end of each step. Run by group, that copy is one group's.
 */
import { grad } from './autodiff';
import { rowsAddedTo } from './ops';
import { OnnxModel, toOnnx } from './onnx';
import { Optimizer, clipScale, globalNorm } from './optim';
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

export type StateSpec = { name: string; dtype: DType; shape: number[] };

export interface TrainGraph {
  /**
   * Forward and backward: `loss`, the metrics, each parameter's gradient as `new:grad.<param>` and
   * `grad_norm`, their global norm.
   */
  gradients: OnnxModel;
  /** With gradient accumulation: the same, but each gradient is added into input `grad.<param>`. */
  accumulate?: OnnxModel;
  /**
   * The optimizer's update of each group of parameters from `grad.<param>` times input `grad_scale`
   * (1/micro-batches), clipped by its global norm (input `grad_norm`, of the unscaled gradients);
   * inputs `lr` and `step` (1-based) are scalars of the loss's dtype.
   */
  updates: UpdateGraph[];
  /** Inputs whose new values the updates output: parameters, then optimizer slots. */
  state: StateSpec[];
  /** The gradient of each parameter, `grad.<param>`: written by `gradients`, summed by `accumulate`. */
  gradientState: StateSpec[];
  /** The state whose new value its graph may write over the old one (see `overwritable`). */
  overwrites: string[];
  /** Scalar outputs reported per step. */
  scalars: string[];
  /**
   * With the update apart: rows that `gradients` and `accumulate` output for the step to add into
   * a gradient's buffer after the run (an embedding lookup's gradient), in order. Their gradient's
   * output is then its dense part only (a tied LM head's, written into the buffer as soon as it is
   * made rather than held through the backward for the lookup's rows), and `grad_norm` is the norm
   * before the rows are added: the step brings it up to date for the rows they change.
   */
  rowsAdded: RowsOutput[];
}

/** Outputs `indices` [M] and `rows` [M, ...] to add into `gradient`'s rows indices[m]. */
export type RowsOutput = { gradient: string; indices: string; rows: string };

export interface UpdateGraph {
  model: OnnxModel;
  /**
   * Set for a parameter larger than a group, updated alone: its inputs (the parameter, its gradient
   * and slots) have the leading axis `rows`, so a run may update any range of its rows.
   */
  rowsOf?: string;
}

/** Name of the output carrying the new value of state input `name`. */
export const nextName = (name: string) => `new:${name}`;

const gradientName = (param: string) => `grad.${param}`;

/**
 * Parameters per update run, in bytes: the update's intermediates and outputs (and the copies the
 * binding makes of them) stay a few times this, however large the model.
 */
export const UPDATE_GROUP_BYTES = 16 << 20;

/**
 * Builds the step's graphs; with `accumulate`, also the one that adds gradients over micro-batches.
 * With `updateApart`, the update runs apart from the backward in groups of parameters; without it
 * (and without accumulation) the whole step is one graph whose gradients never leave it, which
 * is what a provider without host copies, or a malloc that maps each large block afresh, runs best.
 */
export function buildTrainGraph(spec: TrainStepSpec & { accumulate?: boolean; updateApart?: boolean }): TrainGraph {
  const { loss, params } = spec;
  for (const p of params) {
    if (p.op !== 'Input') throw new ShapeError(`train step: parameter ${p} must be a graph input`);
    if (p.shape.some((d) => typeof d !== 'number'))
      throw new ShapeError(`train step: parameter "${p.name}" needs a fixed shape, got [${p.shape}]`);
  }
  const grads = grad(loss, params, Object.values(spec.metrics ?? {}));
  const whole = !spec.updateApart && !spec.accumulate;
  const split = grads.map((g) => (spec.updateApart ? rowsAddedTo(g) : { dense: g, added: [] }));
  const rowsAdded = params.flatMap((p, i) => split[i].added.map((_, k) => rowsOutput(p, k)));
  const given = whole ? { grads, gradNorm: globalNorm(grads) } : undefined;
  const updates = (spec.updateApart ? groupParams(params) : [params]).map((group) =>
    optimizerUpdate(spec, group, given),
  );
  // Each gradient's dense part (plus its value in the buffer when accumulating), its rows, and their norm.
  const passes = (valueOf: (dense: Tensor, p: Tensor) => Tensor) => {
    const out: Record<string, Tensor> = { loss, ...spec.metrics };
    params.forEach((p, i) => {
      out[nextName(gradientName(p.name!))] = valueOf(split[i].dense, p);
      split[i].added.forEach(({ indices, rows }, k) => {
        const names = rowsOutput(p, k);
        Object.assign(out, { [names.indices]: indices, [names.rows]: rows });
      });
    });
    out.grad_norm = globalNorm(params.map((p) => out[nextName(gradientName(p.name!))]));
    return out;
  };
  const gradients = given
    ? { loss, ...spec.metrics, grad_norm: given.gradNorm, ...updates[0].outputs }
    : passes((g) => g);
  const accumulated = spec.accumulate && passes((g, p) => input(gradientName(p.name!), p.dtype, p.shape).add(g));
  const gradientState = whole ? [] : params.map((p) => specOf(p, gradientName(p.name!)));
  const gradientNames = gradientState.map((g) => g.name);
  return {
    gradients: toOnnx(gradients, whole ? 'train_step' : 'gradients'),
    accumulate: accumulated ? toOnnx(accumulated, 'accumulate_gradients') : undefined,
    updates: whole ? [] : updates.map((u) => ({ model: toOnnx(u.outputs, 'optimizer_update'), rowsOf: u.rowsOf })),
    state: [...params.map((p) => specOf(p)), ...updates.flatMap((u) => u.slots)],
    gradientState,
    overwrites: [
      ...(whole
        ? overwritable(gradients, updates[0].stateNames)
        : updates.flatMap((u) => overwritable(u.outputs, u.stateNames))),
      ...(accumulated ? overwritable(accumulated, gradientNames) : []),
    ],
    scalars: ['loss', 'grad_norm', ...Object.keys(spec.metrics ?? {})],
    rowsAdded,
  };
}

function rowsOutput(p: Tensor, k: number): RowsOutput {
  const gradient = gradientName(p.name!);
  return { gradient, indices: `${gradient}:indices${k}`, rows: `${gradient}:rows${k}` };
}

const bytesOf = (p: Tensor) => numel(p.shape as number[]) * (p.dtype === 'float64' ? 8 : 4);

function specOf(t: Tensor, name = t.name!): StateSpec {
  return { name, dtype: t.dtype, shape: t.shape as number[] };
}

/** Parameters in their order, in groups of at most UPDATE_GROUP_BYTES (a larger one alone). */
function groupParams(params: Tensor[]): Tensor[][] {
  const groups: Tensor[][] = [];
  let bytes = Infinity;
  for (const p of params) {
    const size = bytesOf(p);
    if (bytes + size > UPDATE_GROUP_BYTES) {
      groups.push([]);
      bytes = 0;
    }
    groups[groups.length - 1].push(p);
    bytes += size;
  }
  return groups;
}

/**
 * The optimizer's update of `params` from their gradients, as named outputs: the `grads` given (of
 * every parameter, with their norm), else inputs `grad.<param>` times `grad_scale`, with their
 * norm as input `grad_norm`; then of any range of rows of a parameter larger than a group.
 */
function optimizerUpdate(spec: TrainStepSpec, params: Tensor[], given?: { grads: Tensor[]; gradNorm: Tensor }) {
  const { loss, optimizer } = spec;
  const shape = params[0].shape as number[];
  const rowsOf = !given && params.length === 1 && shape.length > 0 && bytesOf(params[0]) > UPDATE_GROUP_BYTES;
  const shapeOf = (p: Tensor) => (rowsOf ? ['rows', ...shape.slice(1)] : p.shape);
  const lr = input('lr', loss.dtype, []);
  const step = input('step', loss.dtype, []);
  const gradScale = given ? undefined : input('grad_scale', loss.dtype, []);
  const norm = given?.gradNorm ?? input('grad_norm', loss.dtype, []);
  // One scalar for the mean over micro-batches and the clipping: the optimizer folds it into its coefficients.
  const clip =
    spec.maxGradNorm === undefined ? undefined : clipScale(gradScale ? norm.mul(gradScale) : norm, spec.maxGradNorm);
  const scale = gradScale && clip ? gradScale.mul(clip) : (gradScale ?? clip);
  const gradOf = (p: Tensor, i: number) => given?.grads[i] ?? input(gradientName(p.name!), p.dtype, p.shape);
  const outputs: Record<string, Tensor> = {};
  const slots: StateSpec[] = [];
  for (const [i, param] of params.entries()) {
    const p = given ? param : input(param.name!, param.dtype, shapeOf(param));
    const g = scale ? gradOf(p, i).mul(scale) : gradOf(p, i);
    const olds = optimizer.slots.map((s) => input(`${s}.${p.name}`, p.dtype, p.shape));
    const next = optimizer.update(p, g, olds, lr, step);
    outputs[nextName(p.name!)] = next.param;
    olds.forEach((s, k) => {
      outputs[nextName(s.name!)] = next.slots[k];
      slots.push(specOf(param, s.name!));
    });
  }
  const stateNames = [...params.map((p) => p.name!), ...slots.map((s) => s.name)];
  return { outputs, slots, stateNames, rowsOf: rowsOf ? params[0].name! : undefined };
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
