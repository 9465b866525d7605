/**
 * The tiny policy the online-RL tests (PPO, GRPO, RLOO) start from: SFT on "What does a <animal>
 * eat?" answered with every food about evenly, so a reward has something to sharpen.
 */
import * as fs from 'fs';
import * as path from 'path';
import { parseExperiment } from '../../src/experiment/config';
import { runSft } from '../../src/train/sft';

/** The experiment settings these tests share: a one-layer model on one CPU thread. */
export const TINY_BASE = {
  seed: 1,
  model: 'tiny',
  model_size: { n_layer: 1, n_embd: 48, n_head: 2, n_positions: 32 },
  runtime: { provider: 'cpu', threads: 1 },
};

const ANIMALS = ['cat', 'dog', 'cow', 'bird', 'fox', 'bear'];
const FOODS = [' fish', ' grass', ' seeds', ' meat'];

/**
 * Writes `dir`/sft.jsonl and `dir`/prompts.jsonl (each prompt with its "animal" column), trains the
 * policy into `dir`/sft, and returns its model folder.
 */
export async function trainAnimalPolicy(dir: string): Promise<string> {
  const question = (a: string) => `What does a ${a} eat?`;
  fs.writeFileSync(
    path.join(dir, 'sft.jsonl'),
    ANIMALS.flatMap((a) =>
      FOODS.map((f) => JSON.stringify({ prompt: question(a), completion: ` A ${a} eats${f}.` })),
    ).join('\n'),
  );
  fs.writeFileSync(
    path.join(dir, 'prompts.jsonl'),
    ANIMALS.map((a) => JSON.stringify({ prompt: question(a), animal: a })).join('\n'),
  );
  const sft = await runSft({
    experiment: parseExperiment(
      {
        ...TINY_BASE,
        sft: {
          data: path.join(dir, 'sft.jsonl'),
          max_steps: 120,
          per_device_train_batch_size: 8,
          learning_rate: 1e-2,
          warmup_steps: 10,
          eval_fraction: 0,
          logging_steps: 40,
          save_steps: 1000,
        },
      },
      'test',
    ),
    outputDir: path.join(dir, 'sft'),
    emit: () => {},
  });
  return sft.modelDir;
}
