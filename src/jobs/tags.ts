import { ValidationError } from '../core/errors.js';

/** TAGS_PER_JOB_LIMIT is the most tags one job may carry. */
export const TAGS_PER_JOB_LIMIT = 32;

/** TAG_MAX_LENGTH is the longest tag accepted. */
export const TAG_MAX_LENGTH = 100;

// A tag starts with a letter or digit and goes on with letters, digits and the separators people put
// in labels (region:eu, customer/42, v1.2, owner=billing, team@ops). No spaces, quotes, commas or
// braces: a tag is written in filters, CLI arguments and PostgreSQL array text without any escaping.
const TAG_PATTERN = /^[\p{L}\p{N}][\p{L}\p{N}_.:/=@-]*$/u;

const TAG_RULE = `a letter or digit, then letters, digits or _ . : / = @ -, at most ${TAG_MAX_LENGTH} characters`;

/** validateTag returns `tag` if it is a valid tag, or throws a ValidationError for `field`. */
export function validateTag(tag: unknown, field: string): string {
  if (typeof tag !== 'string' || tag.length > TAG_MAX_LENGTH || !TAG_PATTERN.test(tag)) {
    throw new ValidationError(field, `a tag: ${TAG_RULE}`, tag);
  }
  return tag;
}

/**
 * validateTags returns a job's tags in the order given without repeats, or throws a ValidationError
 * for `field`: an array of at most TAGS_PER_JOB_LIMIT tags (see validateTag).
 */
export function validateTags(tags: unknown, field: string): string[] {
  if (!Array.isArray(tags)) throw new ValidationError(field, 'an array of tags', tags);
  const unique = [...new Set(tags.map((tag, i) => validateTag(tag, `${field}[${i}]`)))];
  if (unique.length > TAGS_PER_JOB_LIMIT) {
    throw new ValidationError(field, `at most ${TAGS_PER_JOB_LIMIT} different tags`, tags);
  }
  return unique;
}
