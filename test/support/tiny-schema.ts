import type { StandardSchemaV1, StandardSchemaV1Issue } from '../../src/index.js';

/** Shape describes an object of string and number fields, for tinySchema. */
export type Shape = Record<string, 'string' | 'number'>;

/** Infer is the object type a Shape describes. */
export type Infer<S extends Shape> = { [K in keyof S]: S[K] extends 'string' ? string : number };

/**
 * tinySchema is a hand-made Standard Schema v1 validator of flat objects, standing in for Zod or
 * Valibot (neither is a dependency). It trims strings, so tests can see that the validated value,
 * not the given one, is stored; `async` makes validate return a promise, as some validators do.
 */
export function tinySchema<S extends Shape>(shape: S, async = false): StandardSchemaV1<unknown, Infer<S>> {
  const validate = (value: unknown) => {
    if (typeof value !== 'object' || value === null) return { issues: [{ message: 'an object' }] };
    const issues: StandardSchemaV1Issue[] = [];
    const out: Record<string, unknown> = {};
    for (const [key, type] of Object.entries(shape)) {
      const field = (value as Record<string, unknown>)[key];
      if (typeof field !== type) issues.push({ message: `a ${type}`, path: [{ key }] });
      else out[key] = typeof field === 'string' ? field.trim() : field;
    }
    return issues.length > 0 ? { issues } : { value: out as Infer<S> };
  };
  return {
    '~standard': {
      version: 1,
      vendor: 'tiny',
      validate: async ? (value) => Promise.resolve(validate(value)) : validate,
    },
  };
}
