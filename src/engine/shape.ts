/**
 * Shape arithmetic at graph-build time, with symbolic dimensions. A symbolic dim is a name such as
 * "B" or a product of names such as "B*T" (what reshape([-1, D]) of a [B, T, D] tensor gives);
 * products are kept in a canonical order so equal sizes compare equal as strings.
 */
import { Dim, Shape, ShapeError, formatShape } from './tensor';

/** numpy-style broadcasting of several shapes. */
export function broadcastShapes(op: string, ...shapes: Shape[]): Dim[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let dim: Dim = 1;
    for (const s of shapes) {
      const d = s[s.length - rank + i] ?? 1;
      if (d === 1 || d === dim) continue;
      if (dim !== 1) {
        throw new ShapeError(
          `${op}: shapes ${shapes.map(formatShape).join(' and ')} do not broadcast (axis ${i}: ${dim} vs ${d})`,
        );
      }
      dim = d;
    }
    out.push(dim);
  }
  return out;
}

/** A size as coefficient × product of symbols. */
interface Product {
  coef: number;
  syms: string[];
}

function productOf(dims: Shape): Product {
  const p: Product = { coef: 1, syms: [] };
  for (const d of dims) {
    if (typeof d === 'number') p.coef *= d;
    else {
      // A symbolic dim may carry a numeric factor ("4*B" from reshaping [B, 4, D] to [-1, D]).
      for (const f of d.split('*')) {
        if (/^\d+$/.test(f)) p.coef *= Number(f);
        else p.syms.push(f);
      }
    }
  }
  p.syms.sort();
  return p;
}

function dimOf(p: Product): Dim {
  if (p.syms.length === 0) return p.coef;
  const name = p.syms.join('*');
  return p.coef === 1 ? name : `${p.coef}*${name}`;
}

function divide(a: Product, b: Product): Product | undefined {
  const syms = [...a.syms];
  for (const s of b.syms) {
    const i = syms.indexOf(s);
    if (i < 0) return undefined;
    syms.splice(i, 1);
  }
  if (b.coef === 0 || a.coef % b.coef !== 0) return undefined;
  return { coef: a.coef / b.coef, syms };
}

/** A product of dims as one dim (e.g. [B, T] → "B*T", [4, 8] → 32). */
export function productDim(dims: Shape): Dim {
  return dimOf(productOf(dims));
}

/** Resolves a reshape target (at most one -1) against the input shape, checking the sizes agree. */
export function reshapeShape(op: string, from: Shape, to: Shape): Dim[] {
  const unknown = to.filter((d) => d === -1).length;
  if (unknown > 1) throw new ShapeError(`${op}: more than one -1 in ${formatShape(to)}`);
  const known = to.filter((d) => d !== -1);
  const rest = divide(productOf(from), productOf(known));
  const fail = () => new ShapeError(`${op}: cannot reshape ${formatShape(from)} to ${formatShape(to)}`);
  if (!rest) throw fail();
  if (unknown === 0) {
    if (rest.coef !== 1 || rest.syms.length) throw fail();
    return [...to];
  }
  return to.map((d) => (d === -1 ? dimOf(rest) : d));
}

/** Normalises a possibly negative axis, checking it is in range. */
export function normAxis(op: string, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) {
    throw new ShapeError(`${op}: axis ${axis} is out of range for rank ${rank}`);
  }
  return a;
}

export function normAxes(op: string, axes: number | number[] | undefined, rank: number): number[] {
  if (axes === undefined) return [...Array(rank).keys()];
  const list = (typeof axes === 'number' ? [axes] : axes).map((a) => normAxis(op, a, rank));
  if (new Set(list).size !== list.length) throw new ShapeError(`${op}: repeated axis in ${JSON.stringify(axes)}`);
  return list.sort((a, b) => a - b);
}

/** Size of a slice [start, end) of a dim, python-style (negative counts from the end). */
export function sliceDim(op: string, dim: Dim, start: number, end: number | undefined): Dim {
  if (typeof dim === 'number') {
    const clamp = (i: number) => Math.min(Math.max(i < 0 ? i + dim : i, 0), dim);
    return Math.max(clamp(end ?? dim) - clamp(start), 0);
  }
  if (start < 0 && end === undefined) return -start; // the last -start items
  if (start < 0 || (end !== undefined && end >= 0 && start > 0)) {
    // Sizes like "T-3+1" would not compare equal to anything else: keep symbolic slices simple.
    throw new ShapeError(
      `${op}: slice [${start}, ${end}) of a symbolic dim "${dim}" needs start ≥ 0 and an end that is absent or negative (or start 0)`,
    );
  }
  if (end !== undefined && end >= 0) return end; // [0, end): a fixed number of leading items
  const cut = start + (end === undefined ? 0 : -end);
  // The items a concatenation added at the end ("P+1" less its last 1) leave the dim it extended.
  if (start === 0 && dim.endsWith(`+${cut}`)) return dim.slice(0, -`+${cut}`.length);
  return cut === 0 ? dim : `${dim}-${cut}`;
}
