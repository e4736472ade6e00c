import { storableText } from './json.js';

/**
 * ErrorText is how a failure is stored: one line to read (a job's `lastError` and its `errors[]`
 * entry's `message`) and, apart, the whole story (the entry's `stack`).
 */
export interface ErrorText {
  /** message is the error's name and the first line of its message, e.g. "TypeError: x is not a function". */
  message: string;
  /**
   * stack is the error's stack or, for a thrown value that has none, its whole text when the first
   * line left some out; null when there is nothing more to tell than the message.
   */
  stack: string | null;
}

/**
 * errorText turns what a handler threw (or gave `fail()`) into storable text. The one-line message
 * keeps `jobchart get` and `job:failed` listeners readable: a stack is mostly frames with absolute
 * paths, and belongs with the attempt it happened in, not in the job's headline. Both parts are made
 * storable (storableText), since one bad character would otherwise fail a whole batch of writes.
 */
export function errorText(error: unknown): ErrorText {
  if (error instanceof Error) {
    const name = typeof error.name === 'string' && error.name !== '' ? error.name : 'Error';
    const text = typeof error.message === 'string' ? error.message : String(error.message);
    const first = firstLine(text);
    const message = first === '' ? name : `${name}: ${first}`;
    const stack = typeof error.stack === 'string' ? error.stack : first === text ? null : `${name}: ${text}`;
    return {
      message: storableText(message),
      stack: stack === null || stack === message ? null : storableText(stack),
    };
  }
  const text = typeof error === 'string' ? error : String(safeJson(error) ?? error);
  const first = firstLine(text);
  return { message: storableText(first), stack: first === text ? null : storableText(text) };
}

// firstLine is `text` up to its first line break (a CR before it dropped too).
function firstLine(text: string): string {
  const end = text.indexOf('\n');
  if (end === -1) return text;
  return text.slice(0, end > 0 && text[end - 1] === '\r' ? end - 1 : end);
}

function safeJson(value: unknown): string | undefined {
  try {
    return JSON.stringify(value);
  } catch {
    return undefined;
  }
}
