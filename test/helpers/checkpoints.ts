/** What the checkpoint tests share: a scratch folder removed after the file's tests, and a tiny GPT-2 config. */
import * as path from 'path';
import { ModelConfig } from '../../src/model/config';
import { tempDir } from './temp';

/** A scratch folder that goes once the file's tests end, and a maker of fresh, not yet existing folders in it. */
export function scratchFolder(prefix: string): { scratch: string; freshDir: () => string } {
  const scratch = tempDir(prefix);
  let count = 0;
  return { scratch, freshDir: () => path.join(scratch, `d${count++}`) };
}

/** GPT-2 at a size whose checkpoints are a few kilobytes. */
export const MINI: ModelConfig = {
  modelType: 'gpt2',
  vocabSize: 64,
  nPositions: 16,
  nEmbd: 8,
  nLayer: 2,
  nHead: 2,
  nKvHead: 2,
  headDim: 4,
  layerNormEpsilon: 1e-5,
  tiedHead: true,
};
