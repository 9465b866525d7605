/** Python source for the scripts an export writes: literals, keyword arguments, and the notes in them. */

/** A JSON-like value as a Python literal (JSON's string escapes are Python's too). */
export function pyLiteral(value: unknown): string {
  if (value === null || value === undefined) return 'None';
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`cannot write ${value} as a Python literal`);
    return String(value);
  }
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(pyLiteral).join(', ')}]`;
  const entries = Object.entries(value as Record<string, unknown>).map(
    ([k, v]) => `${JSON.stringify(k)}: ${pyLiteral(v)}`,
  );
  return `{${entries.join(', ')}}`;
}

/** `name(\n    key=value,\n    ...\n)`: a call with one keyword argument per line, in the given order. */
export function pyCall(name: string, kwargs: Record<string, unknown>, indent = ''): string {
  const lines = Object.entries(kwargs)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${indent}    ${k}=${pyLiteral(v)},`);
  return `${name}(\n${lines.join('\n')}\n${indent})`;
}

/** Lines as Python comments. */
export function pyComment(lines: string[]): string {
  return lines.map((l) => `# ${l}`).join('\n');
}
