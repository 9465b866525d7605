/** Generate with Model's result: the prompt, the completion set apart, the model, settings and time. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generationMarkdown } from '../../src/shared/generation-report';

const base = {
  modelName: 'demo SFT (12/7/2026)',
  model: '/w/.rlhf/runs/x/model',
  prompt: 'What does a cat eat?',
  completion: ' Fish and ```mice```.',
  sampling: { maxNewTokens: 48, temperature: 0.7, topK: 0, topP: 1 },
  seed: 1234,
  started: new Date(2026, 11, 7, 0, 12, 3),
  seconds: 1.25,
};

test('a generation reads as prompt, then completion apart, with model, settings and time', () => {
  const text = generationMarkdown(base);
  assert.match(text, /^# Generation with demo SFT/);
  assert.match(text, /\*\*Model:\*\* `\/w\/\.rlhf\/runs\/x\/model`/);
  assert.match(text, /max_new_tokens 48 · temperature 0\.7 · top_k 0 · top_p 1 · seed 1234/);
  assert.match(text, /\(1\.3 s\)|\(1\.2 s\)/);
  const prompt = text.indexOf('## Prompt'),
    completion = text.indexOf('## Completion');
  assert.ok(prompt > 0 && completion > prompt);
  assert.ok(text.slice(prompt, completion).includes('What does a cat eat?'));
  // A completion with backticks cannot close its block early.
  assert.ok(text.slice(completion).includes('````text\n Fish and ```mice```.\n````'));
});

test('an empty completion says so', () => {
  assert.match(generationMarkdown({ ...base, completion: '  ' }), /## Completion\n\n_\(empty/);
});
