/**
 * A generation as the person reads it: the prompt, then the completion set apart from it, with the
 * model, the sampling settings and when it ran. Markdown, shown read-only.
 */

export interface GenerationReport {
  /** What the model is called: its run's name and stage, or its folder. */
  modelName: string;
  /** The model folder. */
  model: string;
  prompt: string;
  completion: string;
  sampling: { maxNewTokens: number; temperature: number; topK: number; topP: number };
  seed: number;
  started: Date;
  seconds: number;
}

/** A fenced block that no run of backticks in `text` can close early. */
function fenced(text: string): string {
  const longest = Math.max(0, ...(text.match(/`+/g) ?? []).map((run) => run.length));
  const fence = '`'.repeat(Math.max(3, longest + 1));
  return `${fence}text\n${text}\n${fence}`;
}

export function generationMarkdown(r: GenerationReport): string {
  const s = r.sampling;
  const settings = [
    `max_new_tokens ${s.maxNewTokens}`,
    `temperature ${s.temperature}`,
    `top_k ${s.topK}`,
    `top_p ${s.topP}`,
    `seed ${r.seed}`,
  ].join(' · ');
  return [
    `# Generation with ${r.modelName}`,
    '',
    `- **Model:** \`${r.model}\``,
    `- **Settings:** ${settings}`,
    `- **Time:** ${r.started.toLocaleString()} (${r.seconds.toFixed(1)} s)`,
    '',
    '## Prompt',
    '',
    fenced(r.prompt),
    '',
    '## Completion',
    '',
    r.completion.trim() ? fenced(r.completion) : '_(empty: the model ended its answer at once)_',
    '',
  ].join('\n');
}
