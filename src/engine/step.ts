/**
 * A training step bound to a State: the gradients of one batch (or their sum over micro-batches),
 * then the optimizer's update, group by group; or the whole step in one run (see train-graph.ts).
 */
import * as ort from 'onnxruntime-node';
import { OnnxModel } from './onnx';
import { Program, hostScalar, hostTensor } from './runtime';
import { State } from './state';
import { DType, numel } from './tensor';
import { RowsOutput, StateSpec, TrainGraph, UPDATE_GROUP_BYTES, nextName } from './train-graph';

/** The prefix of the outputs that carry new values of the state. */
const NEW = nextName('');

/** A loaded training step bound to a State. Missing optimizer slots start at zero. */
export class TrainStep {
  private constructor(
    private readonly programs: { gradients: Program; accumulate?: Program; updates: Program[] },
    private readonly graph: TrainGraph,
    readonly state: State,
  ) {}

  static async create(graph: TrainGraph, state: State): Promise<TrainStep> {
    for (const s of [...graph.state, ...graph.gradientState]) {
      if (!state.has(s.name)) {
        if (s.dtype !== 'float32' && s.dtype !== 'float64') throw new Error(`state "${s.name}" has no initial value`);
        state.setOwned(s.name, hostTensor(s.dtype, zerosOf(s.dtype, numel(s.shape)), s.shape));
      }
    }
    // Every new value of the state (gradients included) stays on the device where the provider keeps it there.
    const newState = (model: OnnxModel) => model.outputs.map((o) => o.name).filter((n) => n.startsWith(NEW));
    const load = (model: OnnxModel) => state.runtime.load(model, newState(model));
    const programs = {
      gradients: await load(graph.gradients),
      accumulate: graph.accumulate && (await load(graph.accumulate)),
      updates: [] as Program[],
    };
    for (const { model } of graph.updates) programs.updates.push(await load(model));
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
    const { gradients, accumulate, updates } = this.programs;
    if (micro.length !== 1 && !accumulate)
      throw new Error(
        `this training step takes one batch (it was built without gradient accumulation), got ${micro.length}`,
      );
    const dtype = this.graph.gradients.outputs.find((o) => o.name === 'loss')!.dtype as 'float32' | 'float64';
    const hyper = { lr: hostScalar(lr, dtype), step: hostScalar(step, dtype) };
    const state = this.writableOf(this.graph.state);
    const totals: Record<string, number> = {};
    const perBatch = this.graph.scalars.filter((k) => k !== 'grad_norm');
    let norm = 0;
    for (const [i, batch] of micro.entries()) {
      // The first batch writes the gradients (or, in a one-graph step, the new state), later ones add into them.
      const [program, writable] =
        i === 0
          ? [gradients, [...this.graph.gradientState, ...state]]
          : [accumulate!, this.writableOf(this.graph.gradientState)];
      const out = await this.runInto(program, { ...batch, ...hyper }, writable);
      for (const [k, v] of Object.entries(this.scalars(out, perBatch))) totals[k] = (totals[k] ?? 0) + v / micro.length;
      const squares = this.graph.rowsAdded.reduce((sq, added) => sq + this.addRows(added, out), 0);
      norm = Math.sqrt(Math.max(0, this.scalars(out, ['grad_norm']).grad_norm ** 2 + squares));
    }
    const scaled = { ...hyper, grad_norm: hostScalar(norm, dtype), grad_scale: hostScalar(1 / micro.length, dtype) };
    for (const [i, { rowsOf }] of this.graph.updates.entries())
      if (!rowsOf || !(await this.runByRows(updates[i], rowsOf, scaled, state)))
        await this.runInto(updates[i], scaled, state);
    return { ...totals, grad_norm: norm / micro.length };
  }

  /** The state that a run may write over in place (see `overwritable`). */
  private writableOf(state: StateSpec[]): StateSpec[] {
    const overwrites = new Set(this.graph.overwrites);
    return state.filter((s) => overwrites.has(s.name));
  }

  /**
   * Runs `program` on `feeds` and the state it reads, and keeps the new state it outputs. On the
   * CPU provider, outputs of the state in `writable` are written into the state's own host tensors
   * (no second copy of them); a GPU provider copies its outputs back after the run, so there they
   * are new tensors.
   */
  private async runInto(program: Program, feeds: Record<string, ort.Tensor>, writable: StateSpec[]) {
    const outputs = new Set(program.model.outputs.map((o) => o.name));
    const cpu = this.state.runtime.provider === 'cpu';
    const into = Object.fromEntries(
      writable
        .filter((s) => cpu && outputs.has(nextName(s.name)) && this.state.get(s.name).location === 'cpu')
        .map((s) => [nextName(s.name), this.state.overwritable(s.name)]),
    );
    const out = await program.run(this.state.feedsFor(program, feeds), into);
    for (const name of outputs)
      if (name.startsWith(NEW) && !(name in into)) this.state.set(name.slice(NEW.length), out[name]);
    return out;
  }

  /**
   * Updates parameter `param` a range of rows at a time (about UPDATE_GROUP_BYTES each), in place:
   * its state is fed as views of the rows, and each output written into the same view. Returns
   * false, doing nothing, unless every output can be written so (host state, CPU provider).
   */
  private async runByRows(program: Program, param: string, feeds: Record<string, ort.Tensor>, writable: StateSpec[]) {
    const overwrite = new Set(writable.map((s) => s.name));
    const outputs = program.model.outputs.map((o) => o.name.slice(NEW.length));
    const rowInputs = program.model.inputs.filter((i) => i.shape[0] === 'rows').map((i) => i.name);
    if (
      this.state.runtime.provider !== 'cpu' ||
      !outputs.every((n) => overwrite.has(n)) ||
      !rowInputs.every((n) => this.state.get(n).location === 'cpu')
    )
      return false;
    const whole = Object.fromEntries(
      rowInputs.map((n) => [n, overwrite.has(n) ? this.state.overwritable(n) : this.state.get(n)]),
    );
    const [rows, ...rest] = whole[param].dims;
    const rowSize = numel(rest);
    const data = (t: ort.Tensor) => t.data as Float32Array | Float64Array;
    const step = Math.max(1, Math.floor(UPDATE_GROUP_BYTES / (rowSize * data(whole[param]).BYTES_PER_ELEMENT)));
    for (let start = 0; start < rows; start += step) {
      const end = Math.min(rows, start + step);
      const views = Object.fromEntries(
        rowInputs.map((n) => {
          const t = whole[n];
          return [
            n,
            hostTensor(t.type as DType, data(t).subarray(start * rowSize, end * rowSize), [end - start, ...rest]),
          ];
        }),
      );
      await program.run({ ...feeds, ...views }, Object.fromEntries(outputs.map((n) => [nextName(n), views[n]])));
    }
    return true;
  }

  /**
   * Adds the rows a run output into their gradient's host buffer, as the graph's scatter-add would,
   * and returns how much the sum of the gradient's squares grew (only the rows it changed).
   */
  private addRows({ gradient, indices, rows }: RowsOutput, out: Record<string, ort.Tensor>): number {
    const buffer = this.state.overwritable(gradient);
    if (buffer.location !== 'cpu') throw new Error(`gradient "${gradient}" must be in host memory to add rows into`);
    const into = buffer.data as Float32Array | Float64Array;
    const at = out[indices].data as Int32Array | BigInt64Array;
    const from = out[rows].data as Float32Array | Float64Array;
    const [size, rowSize] = [buffer.dims[0], from.length / Math.max(at.length, 1)];
    const rowsAt = Array.from(at as ArrayLike<number | bigint>, (i): number => {
      const row = Number(i) < 0 ? Number(i) + size : Number(i);
      if (!(row >= 0 && row < size)) throw new RangeError(`${indices}: index ${i} is outside [${-size}, ${size})`);
      return row;
    });
    const changed = [...new Set(rowsAt)];
    const squares = () =>
      changed.reduce((sq, row) => sq + sumOfSquares(into.subarray(row * rowSize, (row + 1) * rowSize)), 0);
    const before = squares();
    rowsAt.forEach((row, m) => {
      for (let j = 0, o = row * rowSize, f = m * rowSize; j < rowSize; j++) into[o + j] += from[f + j];
    });
    return squares() - before;
  }

  private scalars(out: Record<string, ort.Tensor>, names: string[]): Record<string, number> {
    return Object.fromEntries(names.map((k) => [k, Number((out[k].data as Float32Array)[0])]));
  }

  async release(): Promise<void> {
    const { gradients, accumulate, updates } = this.programs;
    for (const p of [gradients, accumulate, ...updates]) await p?.release();
  }
}

function sumOfSquares(xs: Float32Array | Float64Array): number {
  let sum = 0;
  for (let i = 0; i < xs.length; i++) sum += xs[i] * xs[i];
  return sum;
}

function zerosOf(dtype: 'float32' | 'float64', n: number): Float32Array | Float64Array {
  return dtype === 'float64' ? new Float64Array(n) : new Float32Array(n);
}
