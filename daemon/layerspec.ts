/**
 * layer.json: parsing, validation and format upgrades. Pure (no fs): the symlink check that needs
 * the disk lives in store.ts. Every problem names the file, the field and the reason.
 */
import * as v from 'valibot';
import { ErrorInfo, LAYER_FORMAT, LAYER_NAME_RE, LayerSpec, Mapping, layerName } from '../protocol';
import { fieldMessages, isUnknownField, issueField, pathTo, plainObject, text } from '../protocol/schema';
import { normalizeLayerPath, normalizeViewPath } from '../shared/resolver';
import { StrataError } from '../shared/errors';

export const MAX_LAYER_JSON = 1024 * 1024;

/**
 * Format 1 (Strata 0.0.x) kept mappings as an object {original: destination} under "map", and
 * named the lists "exclude" and "hide". Upgrade it to the current shape.
 */
function upgradeV1(o: Record<string, unknown>): Record<string, unknown> {
  const map = o.map;
  const mappings = v.is(plainObject(), map) ? Object.entries(map).map(([original, destination]) => ({ original, destination })) : map;
  const { map: _m, exclude, hide, ...rest } = o;
  void _m;
  return { ...rest, format: LAYER_FORMAT, mappings, excludes: exclude ?? [], deletes: hide ?? [] };
}

// ---- the file's rules: the wire shape (protocol/layer.ts) plus value limits and normalized paths --

/** A string normalized by `fn`; its PathError message is the reason. */
function path(fn: (p: string) => string) {
  return v.pipe(
    v.string('must be a string'),
    v.rawTransform<string, string>(({ dataset, addIssue, NEVER }) => {
      try {
        return fn(dataset.value);
      } catch (e) {
        addIssue({ message: (e as Error).message });
        return NEVER;
      }
    }),
  );
}

const mappingEntries = {
  original: path(normalizeViewPath),
  destination: path((p) => normalizeLayerPath(p) || '/'),
};
const mappingMessage = 'must be an object {original, destination}';
const mapping = v.pipe(plainObject(mappingMessage), v.strictObject(mappingEntries, fieldMessages(mappingEntries, mappingMessage)));

/** An original mapped twice (after normalization) is refused at its second mapping. */
const noDuplicateOriginals = v.rawCheck<Mapping[]>(({ dataset, addIssue }) => {
  if (!dataset.typed) return;
  const seen = new Set<string>();
  dataset.value.forEach((m, i) => {
    if (seen.has(m.original)) addIssue({ message: `"${m.original}" is mapped twice`, path: pathTo(dataset.value, i, 'original') });
    seen.add(m.original);
  });
});

const viewPaths = v.nullish(
  v.pipe(
    v.array(
      v.pipe(
        path(normalizeViewPath),
        v.check((p) => p !== '/', 'cannot be the whole view'),
      ),
      'must be a list of view paths',
    ),
    v.transform((ps) => [...new Set(ps)]),
  ),
  [],
);
const requiredName = (i: v.BaseIssue<unknown>) =>
  `must be a layer name (letters, digits, . _ + -; up to 64), got ${JSON.stringify(i.input)}`;
/** Absent when empty (see protocol/layer.ts); a name given twice counts once. */
const requires = v.optional(
  v.pipe(
    v.array(layerName(requiredName), 'must be a list of layer names'),
    v.maxLength(1000, 'must name at most 1000 layers'),
    v.transform((ns) => [...new Set(ns)]),
  ),
);
const priority = (i: v.BaseIssue<unknown>) => `must be an integer between -1000000 and 1000000, got ${JSON.stringify(i.input)}`;

const specEntries = {
  format: v.literal(LAYER_FORMAT),
  name: layerName((i) => `must match ${LAYER_NAME_RE} (letters, digits, . _ + -; up to 64), got ${JSON.stringify(i.input)}`),
  version: v.nullish(text(128), ''),
  description: v.nullish(text(4096), ''),
  priority: v.nullish(
    v.pipe(v.number(priority), v.integer(priority), v.minValue(-1_000_000, priority), v.maxValue(1_000_000, priority)),
    100,
  ),
  mappings: v.pipe(v.array(mapping, 'must be a list of {original, destination}'), noDuplicateOriginals),
  excludes: viewPaths,
  deletes: viewPaths,
  requires,
};
const layerFile = v.pipe(
  plainObject('must be a JSON object'),
  v.objectWithRest(specEntries, v.never('unknown field'), fieldMessages(specEntries, 'must be a JSON object')),
);

/** Validate a parsed layer.json (any format this Strata reads). Returns the spec or every problem found. */
export function checkLayerSpec(raw: unknown, file: string): { spec?: LayerSpec; problems: ErrorInfo[] } {
  const problem = (field: string, reason: string): ErrorInfo => ({ code: 'E_LAYER_INVALID', message: `${file}: ${field}: ${reason}` });
  if (!v.is(plainObject(), raw)) return { problems: [problem('(top level)', 'must be a JSON object')] };
  let o = raw;
  if (o.format === undefined) {
    return { problems: [problem('format', `missing; this Strata writes format ${LAYER_FORMAT}`)] };
  }
  if (typeof o.format !== 'number' || !Number.isInteger(o.format) || o.format < 1) {
    return { problems: [problem('format', `must be a positive integer, got ${JSON.stringify(o.format)}`)] };
  }
  if (o.format > LAYER_FORMAT) {
    return {
      problems: [
        {
          code: 'E_LAYER_FORMAT',
          message: `${file}: format: ${o.format} was written by a newer Strata; this one reads formats 1 to ${LAYER_FORMAT}`,
          hint: 'Upgrade Strata to use this layer.',
        },
      ],
    };
  }
  if (o.format === 1) o = upgradeV1(o);

  const r = v.safeParse(layerFile, o);
  if (r.success) {
    const { format, name, version, description, priority, mappings, excludes, deletes, requires } = r.output;
    const self = requires?.indexOf(name) ?? -1;
    if (self >= 0) return { problems: [problem(`requires[${self}]`, `a layer cannot require itself ("${name}")`)] };
    const spec: LayerSpec = { format, name, version, description, priority, mappings, excludes, deletes };
    return { spec: requires?.length ? { ...spec, requires } : spec, problems: [] };
  }
  // Unknown top-level fields first, then the fields in order (a stable sort keeps the rest as found).
  const issues = [...r.issues].sort((a, b) => rank(a) - rank(b));
  return {
    problems: issues.map((i) => {
      const field = issueField(i);
      const escapes = /^mappings\[\d+\]\.destination$/.test(field) && /escape|absolute/.test(i.message);
      return { ...problem(field, i.message), code: escapes ? 'E_MAPPING_ESCAPE' : 'E_LAYER_INVALID' };
    }),
  };
}

function rank(i: v.BaseIssue<unknown>): number {
  return isUnknownField(i) && i.path?.length === 1 ? 0 : 1;
}

/** Parse layer.json text; throws a StrataError naming the first problem (all are listed in the message). */
export function parseLayerJson(text: string, file: string): LayerSpec {
  if (Buffer.byteLength(text) > MAX_LAYER_JSON) {
    throw new StrataError(
      'E_LAYER_INVALID',
      `${file}: larger than ${MAX_LAYER_JSON} bytes`,
      'A layer.json holds rules, not content; check the file.',
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new StrataError(
      'E_LAYER_INVALID',
      `${file}: not valid JSON: ${(e as Error).message}`,
      'Fix the file or restore it from an export.',
    );
  }
  const { spec, problems } = checkLayerSpec(raw, file);
  if (!spec) {
    const first = problems[0];
    const more =
      problems.length > 1
        ? ` (and ${problems.length - 1} more: ${problems
            .slice(1)
            .map((p) => p.message)
            .join('; ')})`
        : '';
    throw new StrataError(first.code, first.message + more, first.hint ?? 'Fix the field named above; nothing was changed.');
  }
  return spec;
}

/** The mapping destination as the resolver wants it ('' for the whole layer). */
export function destRel(m: Mapping): string {
  return m.destination === '/' ? '' : m.destination;
}
