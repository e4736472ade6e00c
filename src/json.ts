import { ValidationError } from './errors.js';

// rejectNonJson is a JSON.stringify replacer that refuses what JSON would silently drop or mangle:
// functions, symbols, NaN and Infinity. Cycles and BigInt already make JSON.stringify throw.
function rejectNonJson(this: unknown, key: string, value: unknown): unknown {
  const kind = typeof value;
  if (kind === 'function' || kind === 'symbol') throw new TypeError(`${kind} at "${key}"`);
  if (kind === 'number' && !Number.isFinite(value)) throw new TypeError(`${value} at "${key}"`);
  return value;
}

/**
 * toJsonText serializes `value` for a jsonb column, or throws a ValidationError naming `field` if
 * the value is not plain JSON (BigInt, cycles, functions, symbols, NaN, Infinity). `undefined`
 * becomes JSON null.
 */
export function toJsonText(value: unknown, field: string): string {
  if (value === undefined) return 'null';
  let text: string;
  try {
    text = JSON.stringify(value, rejectNonJson);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new ValidationError(field, `a JSON-serializable value (${reason})`, value);
  }
  // PostgreSQL's jsonb refuses the NUL character; catching it here keeps the error typed and early.
  if (text.includes('\\u0000')) {
    throw new ValidationError(
      field,
      'JSON without the NUL character (\\u0000), which jsonb cannot store',
      value,
    );
  }
  return text;
}
