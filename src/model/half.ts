/**
 * The 16-bit floats checkpoints are shared in, to and from float32, bit for bit as PyTorch converts
 * them: bfloat16 (the top half of a float32) and IEEE half precision (float16). Narrowing rounds to
 * nearest, ties to even; float16 keeps subnormals and overflows to infinity.
 */

/** bfloat16 widens to float32 exactly: its bits are a float32's top half. */
export function bfloat16ToFloat32(halves: Uint16Array): Float32Array {
  const words = new Uint32Array(halves.length);
  for (let i = 0; i < halves.length; i++) words[i] = halves[i] << 16;
  return new Float32Array(words.buffer);
}

let float16Table: Float32Array | undefined;

/** float16 widens to float32 exactly, through a table of all 65536 values. */
export function float16ToFloat32(halves: Uint16Array): Float32Array {
  const table = (float16Table ??= makeFloat16Table());
  const out = new Float32Array(halves.length);
  for (let i = 0; i < halves.length; i++) out[i] = table[halves[i]];
  return out;
}

function makeFloat16Table(): Float32Array {
  const table = new Float32Array(65536);
  const words = new Uint32Array(table.buffer);
  for (let bits = 0; bits < 65536; bits++) {
    const sign = bits & 0x8000 ? -1 : 1;
    const exponent = (bits >> 10) & 0x1f;
    const fraction = bits & 0x3ff;
    // ±Infinity, and NaN keeping its payload
    if (exponent === 31) words[bits] = ((bits & 0x8000) << 16) | 0x7f800000 | (fraction << 13);
    else if (exponent === 0)
      table[bits] = sign * fraction * 2 ** -24; // zero and subnormals
    else table[bits] = sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
  }
  return table;
}

/** A float32's bits, read in place. */
function bitsOf(values: Float32Array): Uint32Array {
  return new Uint32Array(values.buffer, values.byteOffset, values.length);
}

/** float32 to bfloat16, round to nearest even; every NaN becomes 0x7fc0, as in PyTorch. */
export function float32ToBfloat16(values: Float32Array): Uint16Array {
  const bits = bitsOf(values);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < bits.length; i++) {
    const x = bits[i];
    // No carry passes bit 31: only NaNs lie within 0x8000 of 2^32.
    out[i] = (x & 0x7fffffff) > 0x7f800000 ? 0x7fc0 : (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
  return out;
}

/** float32 to IEEE half, round to nearest even; a NaN keeps its sign and becomes quiet (0x7e00). */
export function float32ToFloat16(values: Float32Array): Uint16Array {
  const bits = bitsOf(values);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < bits.length; i++) out[i] = halfBits(bits[i]);
  return out;
}

function halfBits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const abs = x & 0x7fffffff;
  if (abs > 0x7f800000) return sign | 0x7e00;
  if (abs >= 0x477ff000) return sign | 0x7c00; // 65520 and above round to infinity
  if (abs >= 0x38800000) {
    // A normal half: rebias the exponent (127 → 15) and round the fraction's low 13 bits away.
    return sign | ((abs + 0xfff + ((abs >>> 13) & 1) - 0x38000000) >>> 13);
  }
  return sign | subnormalHalf(abs);
}

/** A magnitude below 2^-14 in units of 2^-24, half precision's subnormal step, rounded to even. */
function subnormalHalf(abs: number): number {
  const shift = 126 - (abs >>> 23); // the significand's units are 2^-24 after this right shift
  if (shift > 24) return 0; // below 2^-25: rounds to zero
  const significand = (abs & 0x7fffff) | 0x800000;
  const units = significand >>> shift;
  const rest = significand & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  return units + (rest > half || (rest === half && units & 1) ? 1 : 0);
}

/** The smallest magnitude each 16-bit dtype rounds to infinity: what it cannot hold. */
export const OVERFLOW = {
  bfloat16: new Float32Array(new Uint32Array([0x7f7f8000]).buffer)[0],
  float16: 65520,
} as const;

/** The largest finite value of each 16-bit dtype, for messages. */
export const LARGEST = {
  bfloat16: new Float32Array(new Uint32Array([0x7f7f0000]).buffer)[0],
  float16: 65504,
} as const;
