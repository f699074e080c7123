/** The CLI's command table and argument checks, without running anything; and what cli/ imports. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { COMMANDS, findCommand } from '../../cli/commands';
import { UsageError, closest, parseCommandArgs, usageLine } from '../../cli/command';

const ROOT = path.resolve(__dirname, '..', '..', '..');

function command(name: string) {
  const c = COMMANDS.find((x) => x.name === name);
  assert.ok(c, name);
  return c;
}

function refusal(name: string, argv: string[]): string {
  try {
    parseCommandArgs(command(name), argv);
  } catch (e) {
    assert.ok(e instanceof UsageError, String(e));
    return e.message;
  }
  assert.fail(`strata ${name} ${argv.join(' ')} was accepted`);
}

describe('cli: the command table', () => {
  it('names each command once, and every example parses as its command', () => {
    assert.equal(new Set(COMMANDS.map((c) => c.name)).size, COMMANDS.length);
    for (const c of COMMANDS) {
      assert.ok(c.synopsis && c.description && c.examples.length, c.name);
      for (const ex of c.examples) {
        const words = ex.replace(/#.*$/, '').trim().split(/\s+/);
        assert.equal(words[0], 'strata', ex);
        const found = findCommand(words.slice(1));
        assert.equal(found.command, c, ex);
        assert.doesNotThrow(() => parseCommandArgs(c, found.rest), ex);
      }
      for (const [n, o] of Object.entries(c.options))
        if (o.with) assert.ok(c.options[o.with], `${c.name} --${n} goes with a declared option`);
    }
  });

  it('finds the command after flags that may come first, and stops at the first word that names none', () => {
    assert.equal(findCommand(['--json', 'layer', 'map', 'a', 'b', 'c']).command?.name, 'layer map');
    assert.deepEqual(findCommand(['--json', 'layer', 'map', 'a']).rest, ['--json', 'a']);
    assert.deepEqual(findCommand(['layer', 'frob']), { words: ['layer'], rest: ['frob'] });
    assert.equal(findCommand(['status', 'layer']).rest[0], 'layer');
  });

  it('writes usage lines with required, optional and paired options', () => {
    assert.equal(usageLine(command('activate')), 'activate NAME... [--when-idle [--timeout SECONDS]]');
    assert.equal(
      usageLine(command('relay')),
      'relay --listen HOST:PORT --secret-file FILE [--team TEAM] [--state-file FILE] [--tls-cert PEM --tls-key PEM]',
    );
    assert.equal(usageLine(command('help')), 'help [COMMAND...]');
  });
});

describe('cli: argument checks', () => {
  it('refuses unknown flags, missing values, values on switches and non-integers', () => {
    assert.equal(refusal('status', ['--from', 'x']), 'unknown option --from');
    assert.equal(refusal('status', ['-x']), 'unknown option -x');
    assert.equal(refusal('status', ['--constructor', 'x']), 'unknown option --constructor');
    assert.equal(refusal('layer create', ['n', '--from']), '--from needs a value');
    assert.equal(refusal('deactivate', ['n', '--force=1']), '--force takes no value');
    // Issue 9 item 11: flags of a neighbouring command are refused, not ignored.
    assert.equal(refusal('deactivate', ['n', '--when-idle', '--timeout', '3']), 'unknown option --when-idle');
    assert.equal(refusal('swap', ['a', 'b', '--when-idle']), 'unknown option --when-idle');
    for (const v of ['abc', '', '1.5', ' '])
      assert.equal(refusal('layer create', ['n', '--from', 'd', '--priority', v]), `--priority must be an integer, got "${v}"`);
  });

  it('refuses missing and extra positionals, missing required flags and unpaired flags', () => {
    assert.equal(refusal('layer map', ['a', 'b']), 'expected layer map NAME ORIGINAL DESTINATION');
    assert.equal(refusal('activate', []), 'expected activate NAME...');
    assert.equal(refusal('swap', ['a', 'b', 'c']), 'unexpected argument "c"');
    assert.equal(refusal('relay', []), 'relay needs --listen HOST:PORT and --secret-file FILE');
    assert.equal(refusal('relay', ['--listen', ':0', '--secret-file', 's', '--tls-key', 'k']), '--tls-key and --tls-cert go together');
    assert.equal(refusal('activate', ['a', '--timeout', '3']), '--timeout goes with --when-idle');
  });

  it('hands over positionals, strings, integers and flags', () => {
    const a = parseCommandArgs(command('layer create'), ['n', '--from=dir', '--priority', '-3', '--json']);
    assert.deepEqual(a.positionals, ['n']);
    assert.equal(a.string('from'), 'dir');
    assert.equal(a.integer('priority'), -3);
    assert.equal(a.flag('json'), true);
    assert.equal(a.string('version'), undefined);
    assert.throws(() => a.string('frm'), /declares no option --frm/);
    assert.deepEqual(parseCommandArgs(command('layer show'), ['--', '-n']).positionals, ['-n']);
    assert.deepEqual(parseCommandArgs(command('team join'), ['-', '--secret-file', 's']).positionals, ['-'], 'URL "-": no relay');
  });
});

describe('cli: suggestions for typos', () => {
  it('suggests the nearest word within one or two edits, and nothing for a stranger', () => {
    const words = ['layer', 'view', 'status', 'activate', 'deactivate', 'swap', 'team'];
    assert.equal(closest('lyer', words), 'layer');
    assert.equal(closest('lyaer', words), 'layer', 'two neighbours swapped');
    assert.equal(closest('stauts', words), 'status');
    assert.equal(closest('swp', words), 'swap');
    assert.equal(closest('frobnicate', words), undefined);
    assert.equal(closest('x', words), undefined);
  });
});

describe("cli: README's command table", () => {
  it('is one table: no blank line or text cuts its rows apart', () => {
    const lines = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8').split('\n');
    const rows = lines.flatMap((l, i) => (l.startsWith('| `strata ') ? [i] : []));
    assert.ok(rows.length > 10, 'the table has its rows');
    assert.equal(lines[rows[0] - 1], '| --- | --- |', 'the first row follows the header');
    rows.forEach((r, i) => assert.equal(r, rows[0] + i, `README.md line ${r + 1} is outside the table`));
  });
});

describe('cli: imports only protocol/, shared/ and node', () => {
  it('has no import from daemon/, extension/ or elsewhere', () => {
    const files = (dir: string): string[] =>
      fs
        .readdirSync(dir, { withFileTypes: true })
        .flatMap((e) => (e.isDirectory() ? files(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));
    const allowed = ['protocol', 'shared', 'cli'].map((d) => path.join(ROOT, d));
    for (const f of files(path.join(ROOT, 'cli'))) {
      const text = fs.readFileSync(f, 'utf8');
      const specs = /^\s*(?:import|export)\s+(?:[\w*{}\s,]+?\s+from\s+)?['"]([^'"]+)['"]|\b(?:require|import)\(\s*['"]([^'"]+)['"]/gm;
      for (const m of text.matchAll(specs)) {
        const spec = m[1] ?? m[2];
        if (!spec.startsWith('.')) {
          assert.ok(spec.startsWith('node:') || builtinModules.includes(spec), `${path.relative(ROOT, f)} imports ${spec}`);
          continue;
        }
        const target = path.resolve(path.dirname(f), spec);
        assert.ok(
          allowed.some((d) => target === d || target.startsWith(d + path.sep)),
          `${path.relative(ROOT, f)} imports ${spec}`,
        );
      }
    }
  });
});
