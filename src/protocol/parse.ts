/**
 * Validation on arrival, the same at every boundary: a message is either the schema's value or an
 * error naming its fields.
 */
import { z } from 'zod';

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

export function parseWith<T>(schema: z.ZodType<T>, message: unknown): Parsed<T> {
  const result = schema.safeParse(message);
  if (result.success) return { ok: true, value: result.data };
  const error = result.error.issues
    .map((i) => `${i.path.length ? i.path.join('.') : '(message)'}: ${i.message}`)
    .join('; ');
  return { ok: false, error };
}
