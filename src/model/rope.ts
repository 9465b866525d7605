/**
 * The frequencies of rotary position embeddings, as transformers computes them (in float32):
 * inv_freq[i] = 1 / theta^(2i / headDim), and for rope_type "llama3" Llama 3's stretch of the low
 * frequencies (_compute_llama3_parameters). Neither scaling changes the attention scale.
 */
import type { Llama3RopeScaling, ModelConfig } from './config';

const f32 = Math.fround;

/** Inverse frequencies [headDim / 2] of the model's rotary embedding. */
export function ropeInvFreq(cfg: ModelConfig): Float32Array {
  const inv = defaultInvFreq(cfg.ropeTheta!, cfg.headDim);
  return cfg.ropeScaling ? llama3InvFreq(inv, cfg.ropeScaling) : inv;
}

/** 1 / (theta ** (arange(0, dim, 2) / dim)), each step rounded to float32 as torch does. */
function defaultInvFreq(theta: number, dim: number): Float32Array {
  return Float32Array.from({ length: dim / 2 }, (_, i) => f32(1 / f32(Math.pow(theta, f32((2 * i) / dim)))));
}

/**
 * Wavelengths longer than the original context's / lowFreqFactor are divided by `factor`, those
 * shorter than its / highFreqFactor kept, and those between interpolated smoothly.
 */
function llama3InvFreq(inv: Float32Array, s: Llama3RopeScaling): Float32Array {
  const lowFreqWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
  const highFreqWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
  return inv.map((freq) => {
    const wavelen = f32(f32(2 * Math.PI) / freq);
    if (wavelen < highFreqWavelen) return freq;
    if (wavelen > lowFreqWavelen) return f32(freq / s.factor);
    const rise = f32(f32(s.originalMaxPositionEmbeddings / wavelen) - s.lowFreqFactor);
    const smooth = f32(rise / f32(s.highFreqFactor - s.lowFreqFactor));
    return f32(f32(f32(f32(1 - smooth) * freq) / s.factor) + f32(smooth * freq));
  });
}
