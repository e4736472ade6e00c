import { ValidationError } from '../core/errors.js';

// The Standard Schema v1 interface (https://standardschema.dev), written out here rather than taken
// from a package: it is a public, frozen shape, and jobchart wants no validator as a dependency.
// Zod, Valibot, ArkType and others implement it, so a task's `schema` may come from any of them.

/** StandardSchemaV1 is a validator implementing the Standard Schema v1 interface. */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  /** '~standard' holds the interface's properties. */
  readonly '~standard': StandardSchemaV1Props<Input, Output>;
}

/** StandardSchemaV1Props are the properties under a Standard Schema's `~standard` key. */
export interface StandardSchemaV1Props<Input = unknown, Output = Input> {
  /** version of the interface: 1. */
  readonly version: 1;
  /** vendor names the library (e.g. "zod"). */
  readonly vendor: string;
  /** validate checks a value and returns the (possibly transformed) value or the issues found. */
  readonly validate: (
    value: unknown,
  ) => StandardSchemaV1Result<Output> | Promise<StandardSchemaV1Result<Output>>;
  /** types carries the input and output types for inference only; it is not there at run time. */
  readonly types?: StandardSchemaV1Types<Input, Output> | undefined;
}

/** StandardSchemaV1Result is what `validate` returns: a value, or issues. */
export type StandardSchemaV1Result<Output> = StandardSchemaV1Success<Output> | StandardSchemaV1Failure;

/** StandardSchemaV1Success is a value that passed validation. */
export interface StandardSchemaV1Success<Output> {
  readonly value: Output;
  readonly issues?: undefined;
}

/** StandardSchemaV1Failure lists why a value failed validation. */
export interface StandardSchemaV1Failure {
  readonly issues: ReadonlyArray<StandardSchemaV1Issue>;
}

/** StandardSchemaV1Issue is one reason a value failed, with where in the value it was found. */
export interface StandardSchemaV1Issue {
  readonly message: string;
  readonly path?: ReadonlyArray<PropertyKey | StandardSchemaV1PathSegment> | undefined;
}

/** StandardSchemaV1PathSegment is a path step given as an object. */
export interface StandardSchemaV1PathSegment {
  readonly key: PropertyKey;
}

/** StandardSchemaV1Types carries a schema's input and output types. */
export interface StandardSchemaV1Types<Input = unknown, Output = Input> {
  readonly input: Input;
  readonly output: Output;
}

/** InferSchemaOutput is the type a schema's validation produces: a task's payload type. */
export type InferSchemaOutput<S extends StandardSchemaV1> = NonNullable<S['~standard']['types']>['output'];

/** isStandardSchema says whether `value` looks like a Standard Schema v1 validator. */
export function isStandardSchema(value: unknown): value is StandardSchemaV1 {
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null) return false;
  const props = (value as Partial<StandardSchemaV1>)['~standard'];
  return (
    typeof props === 'object' && props !== null && props.version === 1 && typeof props.validate === 'function'
  );
}

// fieldOf names where an issue lies, below `field`: `payload.to`, `payload.items[2].sku`.
function fieldOf(field: string, path: StandardSchemaV1Issue['path']): string {
  let text = field;
  for (const segment of path ?? []) {
    const key = typeof segment === 'object' && segment !== null ? segment.key : segment;
    text += typeof key === 'number' ? `[${key}]` : `.${String(key)}`;
  }
  return text;
}

/**
 * validateWithSchema runs `schema` on `value` and returns the validated value, or throws a
 * ValidationError naming the first issue's path below `field` and its message. A validator that
 * throws is reported as it threw: that is a bug in the validator, not a bad payload.
 */
export async function validateWithSchema(
  schema: StandardSchemaV1,
  value: unknown,
  field: string,
): Promise<unknown> {
  let result = schema['~standard'].validate(value);
  if (result instanceof Promise) result = await result;
  if (result.issues) {
    const [issue] = result.issues;
    throw new ValidationError(
      fieldOf(field, issue?.path),
      issue?.message ?? `a value the ${schema['~standard'].vendor} schema accepts`,
      value,
    );
  }
  return result.value;
}
