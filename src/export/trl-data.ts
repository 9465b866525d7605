/**
 * The data of a TRL export: a stage's local data, in whatever format this tool reads it
 * (src/data/formats), rewritten as TRL's JSONL (SFT records; preference pairs with a winner); a Hub
 * dataset stays on the Hub, loaded by the script with `load_dataset`.
 */
import { assertNoDataErrors } from '../data/jsonl';
import { ColumnMapping, readDataset } from '../data/formats/read';
import { isHubDataset, parseDataSpec } from '../data/formats/source';
import { loadPreferencePairs, loadPrompts } from '../data/formats/stage-data';
import { SFT_RECORDS } from '../data/sft';
import { pyLiteral } from './python';

/** Where a script's dataset comes from: a file of the export, or a Hub dataset. */
export type ExportedData =
  { file: string; text: string; count: number; chat?: boolean; columns?: string[] } | { hub: string };

const jsonLines = (rows: object[]) => rows.map((r) => `${JSON.stringify(r)}\n`).join('');

/** SFT data as TRL records (Alpaca rendered with its prompt template, ShareGPT as messages). */
export async function sftData(source: string, columns: ColumnMapping | undefined, file: string): Promise<ExportedData> {
  if (isHubDataset(source)) return { hub: source };
  const { records, errors } = await readDataset(source, SFT_RECORDS, { columns });
  assertNoDataErrors(errors);
  return { file, text: jsonLines(records.map((r) => r.value)), count: records.length };
}

/** The pairs with a winner as TRL preference records (ties, both-bad and skips left out). */
export async function preferenceData(
  source: string,
  columns: ColumnMapping | undefined,
  file: string,
): Promise<ExportedData> {
  if (isHubDataset(source)) return { hub: source };
  const { pairs } = await loadPreferencePairs(source, { columns });
  return {
    file,
    text: jsonLines(pairs.map(({ prompt, chosen, rejected }) => ({ prompt, chosen, rejected }))),
    count: pairs.length,
  };
}

/**
 * Prompts as {"prompt", ...other columns} records (`chat`: some prompt is a list of messages;
 * `columns`: the other columns' names).
 */
export async function promptData(
  source: string,
  columns: ColumnMapping | undefined,
  file: string,
): Promise<ExportedData> {
  if (isHubDataset(source)) return { hub: source };
  const { prompts } = await loadPrompts(source, { columns });
  return {
    file,
    text: jsonLines(prompts.map((p) => ({ prompt: p.value.prompt, ...p.value.columns }))),
    count: prompts.length,
    chat: prompts.some((p) => Array.isArray(p.value.prompt)),
    columns: [...new Set(prompts.flatMap((p) => Object.keys(p.value.columns)))],
  };
}

/** The script's lines that load the data and split off the held-out share as the stage does. */
export function datasetLines(data: ExportedData, evalFraction: number, seed: number, columns?: ColumnMapping): string {
  const lines: string[] = [];
  if ('hub' in data) {
    const spec = parseDataSpec(data.hub);
    const args = [pyLiteral(spec.path), `split=${pyLiteral(spec.split ?? 'train')}`];
    if (spec.config) args.push(`name=${pyLiteral(spec.config)}`);
    if (spec.revision) args.push(`revision=${pyLiteral(spec.revision)}`);
    lines.push(`dataset = load_dataset(${args.join(', ')})`);
    // Our mapping reads field ← column; the dataset's columns take the fields' names.
    const renames = Object.fromEntries(Object.entries(columns ?? {}).map(([field, column]) => [column, field]));
    if (Object.keys(renames).length) lines.push(`dataset = dataset.rename_columns(${pyLiteral(renames)})`);
  } else lines.push(`dataset = load_dataset("json", data_files=${pyLiteral(data.file)}, split="train")`);
  lines.push(
    evalFraction > 0
      ? `split = dataset.train_test_split(test_size=${evalFraction}, seed=${seed})\ntrain_dataset, eval_dataset = split["train"], split["test"]`
      : 'train_dataset, eval_dataset = dataset, None',
  );
  return lines.join('\n');
}
