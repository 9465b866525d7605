/**
 * One record of the preference store (format in preferences.ts): its types, and the parsing of each
 * field, shared with the labeling queue's reader. Errors name the field at fault.
 */
import { expectNonEmptyString, expectObject, fieldError, RecordError } from './jsonl';
import { ChatMessage, ChatRole } from '../model/chat';

export type Label = 'a' | 'b' | 'tie' | 'both_bad' | 'skip';
export const LABELS: readonly Label[] = ['a', 'b', 'tie', 'both_bad', 'skip'];

/** A prompt or a response: plain text, or chat messages. */
export type TextOrMessages = string | ChatMessage[];

export type GenerationSettings = Record<string, string | number | boolean | null>;

export interface PreferenceFields {
  id?: string;
  rationale?: string;
  annotator?: string;
  created_at?: string;
  candidate_ids?: { a: string; b: string };
  generation?: GenerationSettings;
  /** Which response was shown on the left when it was labeled. */
  shown_left?: 'a' | 'b';
  /** Seconds from the pair being shown to the label. */
  duration_seconds?: number;
}

/** A comparison with a winner: labeled "a" or "b", or imported. */
export interface DecidedPreference extends PreferenceFields {
  label?: 'a' | 'b';
  prompt: TextOrMessages;
  chosen: TextOrMessages;
  rejected: TextOrMessages;
}

/** A comparison labeled "tie", "both_bad" or "skip". */
export interface UndecidedPreference extends PreferenceFields {
  label: 'tie' | 'both_bad' | 'skip';
  prompt: TextOrMessages;
  response_a: TextOrMessages;
  response_b: TextOrMessages;
}

export type PreferenceRecord = DecidedPreference | UndecidedPreference;

/** Validates one record (throws a RecordError naming the field at fault); unknown keys are ignored. */
export function parsePreferenceRecord(json: Record<string, unknown>): PreferenceRecord {
  const label = parseLabel(json.label);
  const decided = label === undefined || label === 'a' || label === 'b';
  const [first, second] = decided ? (['chosen', 'rejected'] as const) : (['response_a', 'response_b'] as const);
  for (const key of decided ? ['response_a', 'response_b'] : ['chosen', 'rejected']) {
    if (key in json) {
      throw new RecordError(
        `field "${key}" does not belong in a record ${label ? `labeled "${label}"` : 'without a label'}: ` +
          '"chosen"/"rejected" hold a winner and loser, "response_a"/"response_b" the responses of a "tie", "both_bad" or "skip"',
      );
    }
  }
  const { prompt, responses } = parseExchange(json, first, second);
  const { id, ...rest } = parseOptionalFields(json);
  const head = { ...(id !== undefined && { id }), ...(label !== undefined && { label }), prompt };
  if (decided) return { ...head, chosen: responses[0], rejected: responses[1], ...rest } as DecidedPreference;
  return { ...head, response_a: responses[0], response_b: responses[1], ...rest } as UndecidedPreference;
}

function parseLabel(value: unknown): Label | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || !(LABELS as readonly string[]).includes(value)) {
    throw fieldError('label', `must be one of ${LABELS.map((l) => `"${l}"`).join(', ')}`, value);
  }
  return value as Label;
}

/** The prompt and the two responses, all text or all messages. */
function parseExchange(
  json: Record<string, unknown>,
  first: string,
  second: string,
): { prompt: TextOrMessages; responses: [TextOrMessages, TextOrMessages] } {
  if (json.prompt === undefined && Array.isArray(json[first]) && Array.isArray(json[second])) {
    return splitImplicitPrompt(parseMessages(json[first], first), parseMessages(json[second], second), first, second);
  }
  if (json.prompt === undefined && typeof json[first] === 'string') {
    throw new RecordError('field "prompt" is missing; Anthropic HH-RLHF transcripts import with format "hh"');
  }
  const prompt = parsePrompt(json.prompt);
  const response = (key: string) =>
    typeof prompt === 'string' ? parseText(json[key], key) : parseAssistantTurns(json[key], key);
  return { prompt, responses: [response(first), response(second)] };
}

export function parsePrompt(value: unknown, field = 'prompt'): TextOrMessages {
  if (Array.isArray(value)) return parseMessages(value, field);
  if (typeof value === 'string' && value.length > 0) return value;
  throw fieldError(field, 'must be a non-empty string or a list of messages', value);
}

function parseText(value: unknown, field: string): string {
  if (typeof value !== 'string') throw fieldError(field, 'must be a string, as "prompt" is', value);
  return value;
}

const ROLES: readonly string[] = ['system', 'user', 'assistant'] satisfies ChatRole[];

function parseMessages(value: unknown, field: string): ChatMessage[] {
  if (!Array.isArray(value) || value.length === 0)
    throw fieldError(field, 'must be a non-empty list of messages', value);
  return value.map((item, i): ChatMessage => {
    const message = expectObject(item, `${field}[${i}]`);
    if (typeof message.role !== 'string' || !ROLES.includes(message.role)) {
      throw fieldError(`${field}[${i}].role`, 'must be "system", "user" or "assistant"', message.role);
    }
    if (typeof message.content !== 'string')
      throw fieldError(`${field}[${i}].content`, 'must be a string', message.content);
    return { role: message.role as ChatRole, content: message.content };
  });
}

function parseAssistantTurns(value: unknown, field: string): ChatMessage[] {
  if (!Array.isArray(value))
    throw fieldError(field, 'must be a list of assistant messages, as "prompt" is a list of messages', value);
  const messages = parseMessages(value, field);
  checkAssistantTurns(messages, field, 0);
  return messages;
}

function checkAssistantTurns(messages: ChatMessage[], field: string, offset: number): void {
  const i = messages.findIndex((m) => m.role !== 'assistant');
  if (i !== -1)
    throw fieldError(
      `${field}[${offset + i}].role`,
      'must be "assistant": the prompt holds the other turns',
      messages[i].role,
    );
}

/** TRL's implicit prompt: the turns both conversations open with, up to the last non-assistant one. */
function splitImplicitPrompt(first: ChatMessage[], second: ChatMessage[], firstField: string, secondField: string) {
  let shared = 0;
  while (shared < first.length && shared < second.length && sameMessage(first[shared], second[shared])) shared++;
  while (shared > 0 && first[shared - 1].role === 'assistant') shared--;
  if (shared === 0)
    throw new RecordError(
      `field "prompt" is missing, and "${firstField}" and "${secondField}" open with no common user turn to take it from`,
    );
  const responses: [ChatMessage[], ChatMessage[]] = [first.slice(shared), second.slice(shared)];
  [firstField, secondField].forEach((field, k) => {
    if (responses[k].length === 0)
      throw new RecordError(`field "${field}" has no reply after the turns it shares with the other response`);
    checkAssistantTurns(responses[k], field, shared);
  });
  return { prompt: first.slice(0, shared), responses };
}

function sameMessage(x: ChatMessage, y: ChatMessage): boolean {
  return x.role === y.role && x.content === y.content;
}

/** The optional fields of a record (also those of a quality check), each checked. */
export function parseOptionalFields(json: Record<string, unknown>): PreferenceFields {
  const fields: PreferenceFields = {
    id: optional(json.id, 'id', expectNonEmptyString),
    rationale: optional(json.rationale, 'rationale', expectString),
    annotator: optional(json.annotator, 'annotator', expectString),
    created_at: optional(json.created_at, 'created_at', expectTime),
    candidate_ids: optional(json.candidate_ids, 'candidate_ids', parseCandidateIds),
    generation: optional(json.generation, 'generation', parseGeneration),
    shown_left: optional(json.shown_left, 'shown_left', parseSide),
    duration_seconds: optional(json.duration_seconds, 'duration_seconds', expectSeconds),
  };
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
}

/** Absent and null both mean "not given" (dataset exports write null for a missing column). */
function optional<T>(value: unknown, field: string, parse: (value: unknown, field: string) => T): T | undefined {
  return value === undefined || value === null ? undefined : parse(value, field);
}

export function expectString(value: unknown, field: string): string {
  if (typeof value !== 'string') throw fieldError(field, 'must be a string', value);
  return value;
}

function expectTime(value: unknown, field: string): string {
  if (typeof value !== 'string' || Number.isNaN(Date.parse(value)))
    throw fieldError(field, 'must be an ISO 8601 time', value);
  return value;
}

export function parseSide(value: unknown, field: string): 'a' | 'b' {
  if (value !== 'a' && value !== 'b') throw fieldError(field, 'must be "a" or "b"', value);
  return value;
}

function expectSeconds(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0)
    throw fieldError(field, 'must be a number of seconds, 0 or more', value);
  return value;
}

export function parseCandidateIds(value: unknown, field = 'candidate_ids'): { a: string; b: string } {
  const ids = expectObject(value, field);
  return { a: expectNonEmptyString(ids.a, `${field}.a`), b: expectNonEmptyString(ids.b, `${field}.b`) };
}

/** Flat, so any record can be written back (deeply nested JSON would overflow JSON.stringify). */
export function parseGeneration(value: unknown, field = 'generation'): GenerationSettings {
  const settings = expectObject(value, field);
  for (const [key, setting] of Object.entries(settings)) {
    if (setting !== null && !['string', 'number', 'boolean'].includes(typeof setting)) {
      throw fieldError(`${field}.${key}`, 'must be a string, number, boolean or null', setting);
    }
  }
  return settings as GenerationSettings;
}
