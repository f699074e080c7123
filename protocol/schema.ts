/**
 * What every message family's schemas share: a few building blocks with our wording, and one way
 * to turn valibot issues into our messages ("file: field: reason", the field written
 * 'mappings[2].destination'). Imports only valibot, so it runs in the agent, the extension and
 * the webview alike.
 */
import * as v from 'valibot';

export type Issue = v.BaseIssue<unknown>;
/** A message: fixed, or built from the issue (which carries the refused input). */
export type Message = string | ((issue: Issue) => string);

// ---- building blocks --------------------------------------------------------------------------

/**
 * A JSON object (valibot's object and record schemas also take arrays; ours do not). `T` is the
 * input type of the schema piped after it, which checks the rest.
 */
export function plainObject<T = Record<string, unknown>>(message: Message = 'must be an object') {
  return v.custom<T>((x) => typeof x === 'object' && x !== null && !Array.isArray(x), message);
}

export const str = (message: Message = 'must be a string') => v.string(message);
export const bool = (message: Message = 'must be true or false') => v.boolean(message);
export const num = (message: Message = 'must be a number') => v.number(message);

/** A string of at most `max` UTF-16 units. */
export function text(max: number, message: Message = `must be a string of at most ${max} characters`) {
  return v.pipe(v.string(message), v.maxLength(max, message));
}

/** A safe integer in [min, max]. */
export function int(min: number, max = Number.MAX_SAFE_INTEGER, message: Message = `must be an integer from ${min} to ${max}`) {
  return v.pipe(v.number(message), v.safeInteger(message), v.minValue(min, message), v.maxValue(max, message));
}

/** A non-negative safe integer (counts, sequence numbers, clock values). */
export const count = (message: Message = 'must be a non-negative integer') => int(0, Number.MAX_SAFE_INTEGER, message);

export function list<S extends v.GenericSchema>(item: S, max = Infinity, message: Message = 'must be a list') {
  return v.pipe(
    v.array(item, message),
    v.maxLength(max, (i) => `must have at most ${max} entries, got ${(i.input as unknown[]).length}`),
  );
}

/**
 * The object messages: not an object, an unknown field, and a missing field, which reads as the
 * field's own complaint about `undefined` ("must be a string"), so absent and wrong read alike.
 */
export function fieldMessages(entries: v.ObjectEntries, notObject: Message = 'must be an object'): (issue: Issue) => string {
  return (issue) => {
    const key = issue.path?.[0]?.key;
    if (typeof key !== 'string') return typeof notObject === 'string' ? notObject : notObject(issue);
    if (issue.expected === 'never') return 'unknown field';
    const entry = Object.prototype.hasOwnProperty.call(entries, key) ? entries[key] : undefined;
    return (entry && v.safeParse(entry, undefined).issues?.[0].message) || 'missing';
  };
}

/** An object with these fields; others are ignored (and dropped from the output). */
export function obj<const E extends v.ObjectEntries>(entries: E, notObject: Message = 'must be an object') {
  return v.pipe(plainObject<v.InferInput<v.ObjectSchema<E, undefined>>>(notObject), v.object(entries, fieldMessages(entries, notObject)));
}

/** An object with exactly these fields: the first unknown one is refused. */
export function exact<const E extends v.ObjectEntries>(entries: E, notObject: Message = 'must be an object') {
  return v.pipe(
    plainObject<v.InferInput<v.StrictObjectSchema<E, undefined>>>(notObject),
    v.strictObject(entries, fieldMessages(entries, notObject)),
  );
}

/** An object of one tag (`t`, `type`, `event`) in a family: plain valibot, so a variant can dispatch on it. */
export function tagged<const E extends v.ObjectEntries>(entries: E) {
  return v.object(entries, fieldMessages(entries));
}

/** A JSON object used as a map. */
export function rec<K extends v.GenericSchema<string, string>, S extends v.GenericSchema>(
  key: K,
  value: S,
  notObject: Message = 'must be an object',
) {
  return v.pipe(plainObject<v.InferInput<v.RecordSchema<K, S, undefined>>>(notObject), v.record(key, value, notObject));
}

/** A field judged as a whole: any problem inside it gets this one message, on the field. */
export function whole<S extends v.GenericSchema>(schema: S, message: string) {
  return v.pipe(
    v.unknown(),
    v.rawTransform<unknown, v.InferOutput<S>>(({ dataset, addIssue, NEVER }) => {
      const r = v.safeParse(schema, dataset.value);
      if (r.success) return r.output;
      addIssue({ message });
      return NEVER;
    }),
  );
}

/** The issue path to `keys` inside `root`, for checks that report on a field they did not parse. */
export function pathTo(root: unknown, ...keys: (string | number)[]): [v.IssuePathItem, ...v.IssuePathItem[]] {
  const items: v.IssuePathItem[] = [];
  let input = root as Record<string | number, unknown>;
  for (const key of keys) {
    const value = input[key];
    items.push(
      typeof key === 'number'
        ? { type: 'array', origin: 'value', input: input as unknown as unknown[], key, value }
        : { type: 'object', origin: 'value', input, key, value },
    );
    input = value as Record<string | number, unknown>;
  }
  return items as [v.IssuePathItem, ...v.IssuePathItem[]];
}

// ---- issues as our messages -------------------------------------------------------------------

const OBJECT_TYPES = new Set(['object', 'strict_object', 'object_with_rest', 'loose_object']);

/** A field the object requires is absent. */
export function isMissingField(issue: Issue): boolean {
  return OBJECT_TYPES.has(issue.type) && issue.expected !== 'never' && issue.path?.[issue.path.length - 1]?.origin === 'key';
}

/** A field the object does not know (a strict object's, or a `never` rest's). */
export function isUnknownField(issue: Issue): boolean {
  return (OBJECT_TYPES.has(issue.type) && issue.expected === 'never') || issue.type === 'never';
}

/**
 * The field an issue is about: 'mappings[2].destination'; '' for the value itself. A map's bad
 * key is reported on the map (its message names the key).
 */
export function issueField(issue: Issue): string {
  const path = issue.path ?? [];
  const badKey = path.length > 0 && path[path.length - 1].origin === 'key' && !OBJECT_TYPES.has(issue.type);
  let out = '';
  for (const item of badKey ? path.slice(0, -1) : path) {
    const key = item.key;
    out += typeof key === 'number' ? `[${key}]` : `${out ? '.' : ''}${String(key)}`;
  }
  return out;
}

/** "file: field: reason"; "file: reason" when the issue is about the whole value (unless `whole` names it). */
export function issueMessage(issue: Issue, file: string, whole?: string): string {
  return [file, issueField(issue) || whole, issue.message].filter(Boolean).join(': ');
}

/** Check a value; on failure throw an Error naming the file, the field and the reason of each problem (up to 5). */
export function parseValue<const S extends v.GenericSchema>(schema: S, value: unknown, file: string): v.InferOutput<S> {
  const r = v.safeParse(schema, value);
  if (r.success) return r.output;
  const shown = r.issues.slice(0, 5).map((i) => issueMessage(i, file));
  if (r.issues.length > shown.length) shown.push(`and ${r.issues.length - shown.length} more`);
  throw new Error(shown.join('; '));
}

/** Parse a JSON file's text and check it (see parseValue). */
export function parseJson<const S extends v.GenericSchema>(schema: S, text: string, file: string): v.InferOutput<S> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: not valid JSON: ${(e as Error).message}`, { cause: e });
  }
  return parseValue(schema, raw, file);
}

/** UTF-8 length without Node's Buffer, so this file also runs in a webview. */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c < 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}
