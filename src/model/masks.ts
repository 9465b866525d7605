/**
 * Host-side attention inputs. A batch row is a window of S key positions, of which the last T are
 * the queries of this run (T = S without a KV cache). keyMask [B, S] is 1 for real tokens and 0 for
 * padding; left padding puts the zeros first.
 */

/** What the model adds to attention scores where a query may not look. */
export const MASKED = -1e9;

/** Additive bias [B, 1, T, S]: query t sees key s when s ≤ its own position and key s is real. */
export function attentionBias(keyMask: Float32Array, batch: number, t: number, s: number): Float32Array {
  const bias = new Float32Array(batch * t * s);
  for (let b = 0; b < batch; b++) {
    for (let q = 0; q < t; q++) {
      const self = s - t + q;
      const row = (b * t + q) * s;
      for (let k = 0; k < s; k++) {
        if (k > self || keyMask[b * s + k] === 0) bias[row + k] = MASKED;
      }
    }
  }
  return bias;
}

/**
 * Position ids [B, T] for the last T of S positions: each real token's index among the real tokens
 * of its row (so a left-padded prompt gets the positions it would have unpadded), 0 on padding.
 */
export function positionIds(keyMask: Float32Array, batch: number, t: number, s: number): Int32Array {
  const pos = new Int32Array(batch * t);
  for (let b = 0; b < batch; b++) {
    let seen = 0;
    for (let k = 0; k < s; k++) {
      const real = keyMask[b * s + k] !== 0;
      if (k >= s - t) pos[b * t + k - (s - t)] = real ? seen : 0;
      if (real) seen++;
    }
  }
  return pos;
}
