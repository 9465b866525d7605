/**
 * The named tensors that persist across runs: parameters, optimizer slots, gradients.
 */
import * as ort from 'onnxruntime-node';
import { toOnnx } from './onnx';
import { Program, Runtime, hostTensor } from './runtime';
import { DType, input, numel } from './tensor';

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
