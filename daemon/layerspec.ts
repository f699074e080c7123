/**
 * layer.json: parsing, validation and format upgrades. Pure (no fs): the symlink check that needs
 * the disk lives in store.ts. Every problem names the file, the field and the reason.
 */
import { ErrorInfo, LAYER_FORMAT, LAYER_NAME_RE, LayerSpec, Mapping } from '../protocol';
import { normalizeLayerPath, normalizeViewPath, PathError } from '../shared/resolver';
import { StrataError } from '../shared/errors';

export const MAX_LAYER_JSON = 1024 * 1024;

function problem(file: string, field: string, reason: string): ErrorInfo {
  return { code: 'E_LAYER_INVALID', message: `${file}: ${field}: ${reason}` };
}

/**
 * Format 1 (Strata 0.0.x) kept mappings as an object {original: destination} under "map", and
 * named the lists "exclude" and "hide". Upgrade it to the current shape.
 */
function upgradeV1(o: Record<string, unknown>): Record<string, unknown> {
  const map = o.map;
  const mappings =
    typeof map === 'object' && map !== null && !Array.isArray(map)
      ? Object.entries(map as Record<string, unknown>).map(([original, destination]) => ({ original, destination }))
      : map;
  const { map: _m, exclude, hide, ...rest } = o;
  void _m;
  return { ...rest, format: LAYER_FORMAT, mappings, excludes: exclude ?? [], deletes: hide ?? [] };
}

/** Validate a parsed layer.json (any format this Strata reads). Returns the spec or every problem found. */
export function checkLayerSpec(raw: unknown, file: string): { spec?: LayerSpec; problems: ErrorInfo[] } {
  const problems: ErrorInfo[] = [];
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { problems: [problem(file, '(top level)', 'must be a JSON object')] };
  }
  let o = raw as Record<string, unknown>;
  if (o.format === undefined) {
    return { problems: [problem(file, 'format', `missing; this Strata writes format ${LAYER_FORMAT}`)] };
  }
  if (typeof o.format !== 'number' || !Number.isInteger(o.format) || o.format < 1) {
    return { problems: [problem(file, 'format', `must be a positive integer, got ${JSON.stringify(o.format)}`)] };
  }
  if (o.format > LAYER_FORMAT) {
    return {
      problems: [{
        code: 'E_LAYER_FORMAT',
        message: `${file}: format: ${o.format} was written by a newer Strata; this one reads formats 1 to ${LAYER_FORMAT}`,
        hint: 'Upgrade Strata to use this layer.',
      }],
    };
  }
  if (o.format === 1) o = upgradeV1(o);

  const known = new Set(['format', 'name', 'version', 'description', 'priority', 'mappings', 'excludes', 'deletes']);
  for (const k of Object.keys(o)) if (!known.has(k)) problems.push(problem(file, k, 'unknown field'));

  const name = o.name;
  if (typeof name !== 'string' || !LAYER_NAME_RE.test(name)) {
    problems.push(problem(file, 'name', `must match ${LAYER_NAME_RE} (letters, digits, . _ + -; up to 64), got ${JSON.stringify(name)}`));
  }
  const version = o.version ?? '';
  if (typeof version !== 'string' || version.length > 128) problems.push(problem(file, 'version', 'must be a string of at most 128 characters'));
  const description = o.description ?? '';
  if (typeof description !== 'string' || description.length > 4096) problems.push(problem(file, 'description', 'must be a string of at most 4096 characters'));
  const priority = o.priority ?? 100;
  if (typeof priority !== 'number' || !Number.isInteger(priority) || priority < -1_000_000 || priority > 1_000_000) {
    problems.push(problem(file, 'priority', `must be an integer between -1000000 and 1000000, got ${JSON.stringify(priority)}`));
  }

  const mappings: Mapping[] = [];
  if (!Array.isArray(o.mappings)) {
    problems.push(problem(file, 'mappings', 'must be a list of {original, destination}'));
  } else {
    const seen = new Set<string>();
    o.mappings.forEach((m, i) => {
      const f = `mappings[${i}]`;
      if (typeof m !== 'object' || m === null || Array.isArray(m)) {
        problems.push(problem(file, f, 'must be an object {original, destination}'));
        return;
      }
      const mm = m as Record<string, unknown>;
      for (const k of Object.keys(mm)) if (k !== 'original' && k !== 'destination') problems.push(problem(file, `${f}.${k}`, 'unknown field'));
      let original: string | undefined;
      let destination: string | undefined;
      try {
        if (typeof mm.original !== 'string') throw new PathError('must be a string');
        original = normalizeViewPath(mm.original);
      } catch (e) {
        problems.push(problem(file, `${f}.original`, (e as Error).message));
      }
      if (typeof mm.destination !== 'string') {
        problems.push(problem(file, `${f}.destination`, 'must be a string'));
      } else {
        try {
          destination = normalizeLayerPath(mm.destination);
        } catch (e) {
          const escapes = /escape|absolute/.test((e as Error).message);
          problems.push({ ...problem(file, `${f}.destination`, (e as Error).message), code: escapes ? 'E_MAPPING_ESCAPE' : 'E_LAYER_INVALID' });
        }
      }
      if (original !== undefined && destination !== undefined) {
        if (seen.has(original)) problems.push(problem(file, `${f}.original`, `"${original}" is mapped twice`));
        seen.add(original);
        mappings.push({ original, destination: destination === '' ? '/' : destination });
      }
    });
  }
  const pathList = (field: 'excludes' | 'deletes'): string[] => {
    const v = o[field] ?? [];
    if (!Array.isArray(v)) {
      problems.push(problem(file, field, 'must be a list of view paths'));
      return [];
    }
    const out: string[] = [];
    v.forEach((p, i) => {
      try {
        if (typeof p !== 'string') throw new PathError('must be a string');
        const n = normalizeViewPath(p);
        if (n === '/') throw new PathError('cannot be the whole view');
        if (!out.includes(n)) out.push(n);
      } catch (e) {
        problems.push(problem(file, `${field}[${i}]`, (e as Error).message));
      }
    });
    return out;
  };
  const excludes = pathList('excludes');
  const deletes = pathList('deletes');
  if (problems.length) return { problems };
  return {
    spec: {
      format: LAYER_FORMAT,
      name: name as string,
      version: version as string,
      description: description as string,
      priority: priority as number,
      mappings,
      excludes,
      deletes,
    },
    problems,
  };
}

/** Parse layer.json text; throws a StrataError naming the first problem (all are listed in the message). */
export function parseLayerJson(text: string, file: string): LayerSpec {
  if (Buffer.byteLength(text) > MAX_LAYER_JSON) {
    throw new StrataError('E_LAYER_INVALID', `${file}: larger than ${MAX_LAYER_JSON} bytes`, 'A layer.json holds rules, not content; check the file.');
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new StrataError('E_LAYER_INVALID', `${file}: not valid JSON: ${(e as Error).message}`, 'Fix the file or restore it from an export.');
  }
  const { spec, problems } = checkLayerSpec(raw, file);
  if (!spec) {
    const first = problems[0];
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more: ${problems.slice(1).map((p) => p.message).join('; ')})` : '';
    throw new StrataError(first.code, first.message + more, first.hint ?? 'Fix the field named above; nothing was changed.');
  }
  return spec;
}

/** The mapping destination as the resolver wants it ('' for the whole layer). */
export function destRel(m: Mapping): string {
  return m.destination === '/' ? '' : m.destination;
}
