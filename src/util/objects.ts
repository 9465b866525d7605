/** A JSON object (not null, not an array): what config, header and data parsers expect at the top. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
