import { ValidationError } from './errors.js';

// rejectNonJson is a JSON.stringify replacer that refuses what JSON would silently drop or mangle:
// functions, symbols, NaN and Infinity. Cycles and BigInt already make JSON.stringify throw.
function rejectNonJson(this: unknown, key: string, value: unknown): unknown {
  const kind = typeof value;
  if (kind === 'function' || kind === 'symbol') throw new TypeError(`${kind} at "${key}"`);
  if (kind === 'number' && !Number.isFinite(value)) throw new TypeError(`${value} at "${key}"`);
  return value;
}

// PLAIN_DEPTH_MAX bounds isPlainJson's walk; deeper values (and cycles) take the replacer's path.
const PLAIN_DEPTH_MAX = 64;

// isPlainJson tells a value that JSON.stringify turns into text unchanged: strings, booleans, null,
// finite numbers, and arrays and plain objects (no toJSON) of those. Such values are serialized
// without the replacer, which costs a call into JavaScript per key and made serializing three
// times slower. Anything else, fine or not, goes through the replacer, which names the problem.
function isPlainJson(value: unknown, depth: number): boolean {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value);
    case 'object': {
      if (value === null) return true;
      if (depth >= PLAIN_DEPTH_MAX) return false;
      if (Array.isArray(value)) return value.every((item) => isPlainJson(item, depth + 1));
      const prototype = Object.getPrototypeOf(value);
      if ((prototype !== Object.prototype && prototype !== null) || 'toJSON' in value) return false;
      for (const key in value) {
        const item = (value as Record<string, unknown>)[key];
        // JSON drops an undefined property, as the replacer path does.
        if (item !== undefined && !isPlainJson(item, depth + 1)) return false;
      }
      return true;
    }
    default:
      return false;
  }
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
    text = isPlainJson(value, 0) ? JSON.stringify(value) : JSON.stringify(value, rejectNonJson);
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
