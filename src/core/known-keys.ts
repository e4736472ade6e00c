import { UnknownOptionError } from './errors.js';

// editDistance is the Levenshtein distance between two names: how many single-letter edits turn one
// into the other, so that a misspelled option finds the name it was meant to be.
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current[j] = Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, substitution);
    }
    previous = current;
  }
  return previous[b.length] as number;
}

/**
 * nearestName returns the known name closest to `name` (ignoring case), or null when none is close
 * enough to be a likely misspelling (more than a third of its letters would have to change).
 */
export function nearestName(name: string, known: readonly string[]): string | null {
  let best: string | null = null;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of known) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return bestDistance <= Math.max(1, Math.floor(name.length / 3)) ? best : null;
}

/**
 * assertKnownKeys throws an UnknownOptionError for the first own key of `value` not in `known`,
 * naming it (as `field.key`) and the nearest valid name: in JavaScript a misspelled option would
 * otherwise be ignored without a word.
 */
export function assertKnownKeys(value: object, known: readonly string[], field: string): void {
  for (const key of Object.keys(value)) {
    if (known.includes(key)) continue;
    throw new UnknownOptionError(field ? `${field}.${key}` : key, key, known, nearestName(key, known));
  }
}

/**
 * optionNames lists the keys of an options type `T`, from a record naming each of them: the record
 * must name every key of `T` and no other (`optionNames<StartOptions>({ migrate: true })`), so a key
 * added to the type without being listed, or listed without being in the type, fails to compile, and
 * the list an entry point checks against cannot drift from the type its callers see.
 */
export function optionNames<T extends object>(
  names: { readonly [K in keyof Required<T>]: true },
): readonly string[] {
  return Object.keys(names);
}
