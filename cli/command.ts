/**
 * What a command of the table declares, and how its arguments are checked: node:util parseArgs per
 * command, then positionals, integers, required and paired options, all before the command runs.
 */
import { parseArgs } from 'util';
import type { AgentClient } from '../shared/client';
import { StrataError } from '../shared/errors';

export interface Option {
  /** 'integer' takes a value that must be an integer; 'boolean' takes none. */
  type: 'string' | 'integer' | 'boolean';
  /** The value's placeholder in usage lines: DIR, N, HOST:PORT. */
  value?: string;
  short?: string;
  description: string;
  required?: boolean;
  /** Said when a required option is missing. */
  why?: string;
  /** Refused without this other option; two options naming each other go together. */
  with?: string;
  /** A string option that may be given several times (read with `strings`). */
  multiple?: boolean;
}

export interface Positional {
  name: string;
  /** One or more (zero or more when also optional). */
  variadic?: boolean;
  optional?: boolean;
}

export interface Command {
  /** The words that name it: "layer map". */
  name: string;
  /** One line, for `strata help`. */
  synopsis: string;
  /** For `strata NAME --help`. */
  description: string;
  positionals: Positional[];
  options: Record<string, Option>;
  /** Command lines, optionally ending in "# what it does". */
  examples: string[];
  /**
   * Only reads state: it never starts the agent, and a stopped agent makes it exit with status 3
   * (AgentStopped). Other commands start the agent when needed and say so on stderr.
   */
  readOnly?: boolean;
  action(args: Args, ctx: Context): Promise<number>;
}

export interface Args {
  positionals: string[];
  string(name: string): string | undefined;
  /** Every value of a `multiple` option, in order. */
  strings(name: string): string[];
  integer(name: string): number | undefined;
  flag(name: string): boolean;
}

export interface Context {
  /** Prints `value` as JSON with --json, else `text`. */
  print(value: unknown, text: string): void;
  home: string;
  socket: string;
  /** The folder holding agent.js and relay.js. */
  dist: string;
  /**
   * A client of the agent, closed when the command ends. Started in the background when needed
   * (said on stderr), except for read-only commands, which get AgentStopped instead.
   */
  agent(): Promise<AgentClient>;
}

/** Every command takes these. */
export const COMMON_OPTIONS: Record<string, Option> = {
  json: { type: 'boolean', description: 'print the result as JSON' },
  help: { type: 'boolean', short: 'h', description: 'show this help' },
};

/** A wrong invocation: exit status 2, with the usage of `command` (or of the command group). */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly command?: Command,
    readonly group?: string,
  ) {
    super(message);
  }
}

/** A read-only command found no agent running: exit status 3 (read-only commands never start it). */
export class AgentStopped extends StrataError {
  static readonly EXIT = 3;
  constructor(home: string) {
    super(
      'E_AGENT_UNAVAILABLE',
      `the agent for ${home} is not running`,
      'Start it with "strata agent start" (any command that changes something starts it too).',
    );
  }
}

function flagUsage(name: string, o: Option): string {
  return o.type === 'boolean' ? `--${name}` : `--${name} ${o.value ?? 'VALUE'}`;
}

/** A word from `candidates` that `word` is probably a typo of (edit distance of 1, or 2 for longer words). */
export function closest(word: string, candidates: string[]): string | undefined {
  let best: { c: string; d: number } | undefined;
  for (const c of candidates) {
    const d = editDistance(word, c);
    if (d <= (word.length > 4 ? 2 : 1) && (!best || d < best.d)) best = { c, d };
  }
  return best?.c;
}

/** Levenshtein distance, with a swap of two neighbours counted as one edit ("lyaer" → "layer"). */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

function positionalUsage(p: Positional): string {
  const s = p.variadic ? `${p.name}...` : p.name;
  return p.optional ? `[${s}]` : s;
}

/** "layer create NAME --from DIR [--priority N]": positionals, then options (--json and --help left out). */
export function usageLine(cmd: Command): string {
  const parts = [cmd.name, ...cmd.positionals.map(positionalUsage)];
  const entries = Object.entries(cmd.options);
  const shown = new Set<string>();
  for (const [name, o] of entries) {
    if (shown.has(name)) continue;
    const partner = o.with ? cmd.options[o.with] : undefined;
    if (partner && partner.with !== name) continue; // shown inside the option it goes with
    shown.add(name);
    let s = flagUsage(name, o);
    if (partner) {
      s += ` ${flagUsage(o.with!, partner)}`;
      shown.add(o.with!);
    }
    for (const [n, d] of entries) {
      if (d.with !== name || shown.has(n)) continue;
      s += ` [${flagUsage(n, d)}]`;
      shown.add(n);
    }
    parts.push(o.required ? s : `[${s}]${o.multiple ? '...' : ''}`);
  }
  return parts.join(' ');
}

/** The values of a command's options after parsing: strings (all of them for `multiple`), integers, or true for flags. */
type Values = Map<string, string | string[] | number | true>;

function isInteger(v: string): boolean {
  return v.trim() !== '' && Number.isInteger(Number(v));
}

/** Whether argv asks for help (which then wins over anything else wrong in it). */
export function wantsHelp(argv: string[], cmd?: Command): boolean {
  return tokensOf(argv, { ...COMMON_OPTIONS, ...cmd?.options }).some((t) => t.kind === 'option' && t.name === 'help');
}

function tokensOf(argv: string[], options: Record<string, Option>) {
  const spec = Object.fromEntries(
    Object.entries(options).map(([n, o]) => [
      n,
      { type: o.type === 'boolean' ? ('boolean' as const) : ('string' as const), ...(o.short ? { short: o.short } : {}) },
    ]),
  );
  // Not strict: the tokens are checked below, so each refusal names the flag in our own words.
  return parseArgs({ args: argv, options: spec, strict: false, allowPositionals: true, tokens: true }).tokens;
}

/** Checks argv against the command's declaration; throws UsageError naming what is wrong. */
export function parseCommandArgs(cmd: Command, argv: string[]): Args {
  const options = { ...COMMON_OPTIONS, ...cmd.options };
  const values: Values = new Map();
  const positionals: string[] = [];
  const refuse = (m: string) => new UsageError(m, cmd);
  for (const t of tokensOf(argv, options)) {
    if (t.kind === 'positional') positionals.push(t.value);
    if (t.kind !== 'option') continue;
    const o = Object.hasOwn(options, t.name) ? options[t.name] : undefined;
    if (!o) {
      const like = t.rawName.startsWith('--') ? closest(t.name, Object.keys(options)) : undefined;
      throw refuse(`unknown option ${t.rawName}${like ? `; did you mean --${like}?` : ''}`);
    }
    if (o.type === 'boolean') {
      if (t.inlineValue) throw refuse(`${t.rawName} takes no value`);
      values.set(t.name, true);
    } else {
      if (t.value === undefined) throw refuse(`${t.rawName} needs a value`);
      if (o.type === 'integer' && !isInteger(t.value)) throw refuse(`${t.rawName} must be an integer, got "${t.value}"`);
      if (o.multiple) {
        const all = values.get(t.name);
        values.set(t.name, [...(Array.isArray(all) ? all : []), t.value]);
      } else values.set(t.name, o.type === 'integer' ? Number(t.value) : t.value);
    }
  }

  const min = cmd.positionals.filter((p) => !p.optional).length;
  const max = cmd.positionals.some((p) => p.variadic) ? Infinity : cmd.positionals.length;
  if (positionals.length < min) throw refuse(`expected ${[cmd.name, ...cmd.positionals.map(positionalUsage)].join(' ')}`);
  if (positionals.length > max) throw refuse(`unexpected argument "${positionals[max]}"`);

  const missing = Object.entries(cmd.options).filter(([n, o]) => o.required && !values.has(n));
  if (missing.length) {
    const why = missing.map(([, o]) => o.why).filter(Boolean);
    throw refuse(`${cmd.name} needs ${missing.map(([n, o]) => flagUsage(n, o)).join(' and ')}${why.length ? ` (${why.join('; ')})` : ''}`);
  }
  for (const [n, o] of Object.entries(cmd.options)) {
    if (!o.with || !values.has(n) || values.has(o.with)) continue;
    throw refuse(cmd.options[o.with]?.with === n ? `--${n} and --${o.with} go together` : `--${n} goes with --${o.with}`);
  }

  const get = (name: string) => {
    if (!Object.hasOwn(options, name)) throw new Error(`${cmd.name} declares no option --${name}`);
    return values.get(name);
  };
  return {
    positionals,
    string: (name) => {
      const v = get(name);
      return typeof v === 'string' ? v : Array.isArray(v) ? v[v.length - 1] : undefined;
    },
    strings: (name) => {
      const v = get(name);
      return Array.isArray(v) ? v : [];
    },
    integer: (name) => {
      const v = get(name);
      return typeof v === 'number' ? v : undefined;
    },
    flag: (name) => get(name) === true,
  };
}
