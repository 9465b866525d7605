/**
 * TensorBoard's smoothing: an exponential moving average, debiased so the first points are not
 * pulled towards zero. Missing values (NaN) stay missing and do not move the average.
 */
export function smooth(values: ArrayLike<number>, length: number, weight: number): (number | null)[] {
  const out = new Array<number | null>(length);
  let average = 0;
  let debias = 0;
  for (let i = 0; i < length; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) {
      out[i] = Number.isNaN(v) ? null : v;
      continue;
    }
    average = average * weight + (1 - weight) * v;
    debias = debias * weight + (1 - weight);
    out[i] = weight === 0 ? v : average / debias;
  }
  return out;
}
