import { ValidationError } from './errors.js';

// WellFormed types String.prototype.isWellFormed and toWellFormed (Node 20+), which the ES2022 lib
// this project compiles against does not declare yet.
interface WellFormed {
  isWellFormed(): boolean;
  toWellFormed(): string;
}

/**
 * isStorableText tells a string PostgreSQL stores as it is: text and jsonb refuse the NUL character
 * (22P05, 22021), and a lone surrogate becomes an escape jsonb refuses (22P02) or, in a text
 * parameter, a silent U+FFFD, which would make a key match another.
 */
export function isStorableText(text: string): boolean {
  return (text as unknown as WellFormed).isWellFormed() && !text.includes('\u0000');
}

// unstorable names what is wrong with a string isStorableText refused.
function unstorable(text: string): string {
  return (text as unknown as WellFormed).isWellFormed()
    ? 'the NUL character (\\u0000), which PostgreSQL cannot store,'
    : 'a lone surrogate (half of a UTF-16 pair), which PostgreSQL cannot store,';
}

// place names where the replacer is in the value: keys are quoted through JSON.stringify, which
// escapes a lone surrogate, so that the message itself stays storable.
function place(key: string): string {
  return key === '' ? 'at the top level' : `at ${JSON.stringify(key)}`;
}

// rejectNonJson is a JSON.stringify replacer that refuses what JSON would silently drop or mangle
// (functions, symbols, NaN, Infinity, and Maps and Sets, which become {}) and what PostgreSQL cannot
// store (NUL and lone surrogates, in strings and keys). Cycles and BigInt already make
// JSON.stringify throw. It sees what toJSON returned, so a Date's text is checked too.
function rejectNonJson(this: unknown, key: string, value: unknown): unknown {
  const kind = typeof value;
  if (kind === 'function' || kind === 'symbol') throw new TypeError(`${kind} ${place(key)}`);
  if (value !== undefined && !isStorableText(key))
    throw new TypeError(`${unstorable(key)} in the key ${JSON.stringify(key)}`);
  if (kind === 'string') {
    if (!isStorableText(value as string)) throw new TypeError(`${unstorable(value as string)} ${place(key)}`);
  } else if (kind === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`${value} ${place(key)}`);
  } else if (kind === 'object' && value !== null) {
    if (value instanceof Map || value instanceof WeakMap) {
      const name = value instanceof Map ? 'Map' : 'WeakMap';
      throw new TypeError(`a ${name} ${place(key)}, which JSON turns into {} (use an object or entries)`);
    }
    if (value instanceof Set || value instanceof WeakSet) {
      const name = value instanceof Set ? 'Set' : 'WeakSet';
      throw new TypeError(`a ${name} ${place(key)}, which JSON turns into {} (use an array)`);
    }
    // JSON.stringify unwraps a String object after the replacer has seen it.
    if (value instanceof String && !isStorableText(value.valueOf())) {
      throw new TypeError(`${unstorable(value.valueOf())} ${place(key)}`);
    }
  }
  return value;
}

// UNSTORABLE_ESCAPE finds the escapes JSON.stringify writes for NUL and for a lone surrogate (it
// writes paired surrogates as they are), with the backslashes before them: an even number of those
// is an escaped backslash followed by the letter u, which is harmless text.
const UNSTORABLE_ESCAPE = /(\\+)u(?:0000|d[89a-f])/g;

function hasUnstorableEscape(text: string): boolean {
  for (const match of text.matchAll(UNSTORABLE_ESCAPE)) {
    if ((match[1] as string).length % 2 === 1) return true;
  }
  return false;
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
        // JSON drops an undefined property (and its key), as the replacer path does.
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
 * the value is not plain JSON (BigInt, cycles, functions, symbols, NaN, Infinity, Map, Set) or holds
 * a string or key PostgreSQL cannot store (the NUL character, a lone surrogate). `undefined`
 * becomes JSON null.
 */
export function toJsonText(value: unknown, field: string): string {
  if (value === undefined) return 'null';
  let text: string | undefined;
  try {
    text = isPlainJson(value, 0) ? JSON.stringify(value) : JSON.stringify(value, rejectNonJson);
    // JSON.stringify writes NUL and lone surrogates as \u escapes, so one native scan of the text
    // finds any string or key PostgreSQL would refuse (checking each string and key during the walk
    // instead made a small payload about 12 % slower to serialize). The rare text with a \u escape
    // is looked at closely, and the replacer, which checks every string and key, names the culprit.
    if (text?.includes('\\u') && hasUnstorableEscape(text)) {
      JSON.stringify(value, rejectNonJson);
      throw new TypeError('a string PostgreSQL cannot store (NUL or a lone surrogate)');
    }
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new ValidationError(field, `a JSON-serializable value (${reason})`, value);
  }
  // A toJSON that returns undefined leaves nothing to write: JSON says null, as for undefined.
  return text ?? 'null';
}

/**
 * storableText makes text from user code (an error message, a cancel reason) fit a text column:
 * lone surrogates become U+FFFD and NUL characters are dropped. Such text is a diagnosis, not data,
 * so it is repaired rather than refused: refusing it would lose the failure it reports, and one
 * unstorable message would otherwise fail the whole batch of outcomes written with it.
 */
export function storableText(text: string): string {
  if (isStorableText(text)) return text;
  return (text as unknown as WellFormed).toWellFormed().replaceAll('\u0000', '');
}
