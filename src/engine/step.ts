/**
 * A training step bound to a State: the gradients of one batch (or the sum over micro-batches),
 * then the optimizer's update, group by group (see train-graph.ts).
 */
import * as ort from 'onnxruntime-node';
import { Program, hostScalar, hostTensor } from './runtime';
import { State } from './state';
import { StateSpec, TrainGraph, nextName } from './train-graph';
import { numel } from './tensor';

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
    const runtime = state.runtime;
    const gradients = graph.gradientState.map((s) => nextName(s.name));
    const programs = {
      gradients: await runtime.load(graph.gradients, gradients),
      accumulate: graph.accumulate && (await runtime.load(graph.accumulate, gradients)),
      updates: [] as Program[],
    };
    for (const update of graph.updates)
      programs.updates.push(
        await runtime.load(
          update,
          update.outputs.map((o) => o.name),
        ),
      );
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
    const totals: Record<string, number> = {};
    const perBatch = this.graph.scalars.filter((k) => k !== 'grad_norm');
    let norm = 0;
    for (const [i, batch] of micro.entries()) {
      const program = i === 0 ? gradients : accumulate!;
      // The first batch writes the gradients, later ones add into them.
      const writable = i === 0 ? this.graph.gradientState : this.writableOf(this.graph.gradientState);
      const out = await this.runInto(program, batch, writable);
      for (const [k, v] of Object.entries(this.scalars(out, perBatch))) totals[k] = (totals[k] ?? 0) + v / micro.length;
      norm = this.scalars(out, ['grad_norm']).grad_norm;
    }
    const dtype = this.graph.gradients.outputs.find((o) => o.name === 'loss')!.dtype as 'float32' | 'float64';
    const hyper = {
      lr: hostScalar(lr, dtype),
      step: hostScalar(step, dtype),
      grad_norm: hostScalar(norm, dtype),
      grad_scale: hostScalar(1 / micro.length, dtype),
    };
    const slots = this.writableOf(this.graph.state);
    for (const update of updates) await this.runInto(update, hyper, slots);
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
      if (name.startsWith(nextName('')) && !(name in into)) this.state.set(name.slice(nextName('').length), out[name]);
    return out;
  }

  private scalars(out: Record<string, ort.Tensor>, names: string[]): Record<string, number> {
    return Object.fromEntries(names.map((k) => [k, Number((out[k].data as Float32Array)[0])]));
  }

  async release(): Promise<void> {
    const { gradients, accumulate, updates } = this.programs;
    for (const p of [gradients, accumulate, ...updates]) await p?.release();
  }
}

function zerosOf(dtype: 'float32' | 'float64', n: number): Float32Array | Float64Array {
  return dtype === 'float64' ? new Float64Array(n) : new Float32Array(n);
}
