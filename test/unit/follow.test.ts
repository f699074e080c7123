/**
 * The extension's pure parts behind "VS Code follows a switch": decisions in words, which paths a
 * change touched, who a process is (from a fake /proc), and whether a workspace is inside a view.
 */
import assert from 'node:assert/strict';
import type { TeamEvent } from '../../protocol';
import { ago, decisionLine, decisionSummary, switchedBy } from '../../extension/decisions';
import { changedRoots, isUnderAny, overlaps } from '../../extension/follow/paths';
import { ProcInfo, ancestry, commandLine, knownServer } from '../../extension/follow/procs';
import { inAView } from '../../extension/startup';

const tag = { wall: 1_000_000, logical: 0, agent: 'bob-0000aaaa' };
const ev = (writes: TeamEvent['writes'], prev: TeamEvent['prev'] = [], reverts?: string): TeamEvent => ({
  origin: 'bob-0000aaaa',
  seq: 3,
  tag,
  writes,
  prev,
  user: 'bob',
  host: 'box',
  key: '',
  sig: '',
  ...(reverts ? { reverts } : {}),
});

describe('follow: decisions in words', () => {
  it('reads a slot move, a swap of layers, activations and deactivations', () => {
    assert.equal(
      decisionSummary(ev([{ key: 'slot:tool', value: { layer: 'tool-2' } }], [{ key: 'slot:tool', value: { layer: 'tool-3' } }])),
      'tool-3 → tool-2',
    );
    assert.equal(
      decisionSummary(
        ev([
          { key: 'layer:tool-3', value: { active: false } },
          { key: 'layer:tool-2', value: { active: true } },
        ]),
      ),
      'tool-3 → tool-2',
    );
    assert.equal(decisionSummary(ev([{ key: 'layer:node20', value: { active: true } }])), 'activated node20');
    assert.equal(
      decisionSummary(
        ev([
          { key: 'layer:a', value: { active: false } },
          { key: 'layer:b', value: { active: false } },
        ]),
      ),
      'deactivated a, b',
    );
    assert.equal(
      decisionSummary(ev([{ key: 'slot:tool', value: { layer: 'x' } }], [{ key: 'slot:tool', value: { layer: null } }])),
      'activated x',
    );
    assert.equal(
      decisionSummary(ev([{ key: 'slot:tool', value: { layer: null } }], [{ key: 'slot:tool', value: { layer: 'x' } }])),
      'deactivated x',
    );
    assert.equal(decisionSummary(ev([{ key: 'layer:a', value: { active: true } }], [], 'bob-0000aaaa:2')), 'activated a (undo)');
  });

  it('says who and when, never the event id', () => {
    const line = decisionLine(
      ev([{ key: 'slot:tool', value: { layer: 'tool-2' } }], [{ key: 'slot:tool', value: { layer: 'tool-3' } }]),
      tag.wall + 125_000,
    );
    assert.equal(line, 'bob: tool-3 → tool-2, 2 min ago');
    assert.equal(ago(0, 2000), 'just now');
    assert.equal(ago(0, 40_000), '40 s ago');
    assert.equal(ago(0, 3 * 3600_000), '3 h ago');
    assert.equal(ago(0, 5 * 24 * 3600_000), '5 days ago');
  });

  it('says which layers a decision switched on and off', () => {
    assert.deepEqual(
      switchedBy(ev([{ key: 'slot:tool', value: { layer: 'tool-2' } }], [{ key: 'slot:tool', value: { layer: 'tool-3' } }])),
      { on: ['tool-2'], off: ['tool-3'] },
    );
    assert.deepEqual(
      switchedBy(
        ev(
          [
            { key: 'layer:a', value: { active: false } },
            { key: 'layer:b', value: { active: true } },
          ],
          [
            { key: 'layer:a', value: { active: true } },
            { key: 'layer:b', value: { active: false } },
          ],
        ),
      ),
      { on: ['b'], off: ['a'] },
    );
    assert.deepEqual(switchedBy(ev([{ key: 'layer:a', value: { active: true } }], [{ key: 'layer:a', value: { active: true } }])), {
      on: [],
      off: [],
    });
    assert.deepEqual(
      switchedBy(ev([{ key: 'layer:a', value: { active: true } }])),
      { on: ['a'], off: [] },
      'no previous value: it was off',
    );
  });
});

describe('follow: paths a change touched', () => {
  const views = [
    { base: '/w/ws', mountpoint: '/w/ws', inPlace: true, state: 'mounted' as const },
    { base: '/w/b', mountpoint: '/w/m', inPlace: false, state: 'mounted' as const },
    { base: '/w/gone', mountpoint: '/w/gone', inPlace: true, state: 'failed' as const },
  ];

  it('maps view paths into every mounted view', () => {
    assert.deepEqual(changedRoots({ paths: ['/tools', '/'], stale: [] }, views), ['/w/ws/tools', '/w/ws', '/w/m/tools', '/w/m']);
  });

  it('knows what is under a changed path, and which folders overlap one', () => {
    assert.ok(isUnderAny('/w/ws/tools/bin/tool', ['/w/ws/tools']));
    assert.ok(isUnderAny('/w/ws/tools', ['/w/ws/tools']));
    assert.ok(!isUnderAny('/w/ws/toolsx/a', ['/w/ws/tools']));
    assert.ok(overlaps('/w/ws', ['/w/ws/tools']), 'a change inside the folder');
    assert.ok(overlaps('/w/ws/tools/src', ['/w/ws/tools']), 'the folder inside a changed path');
    assert.ok(!overlaps('/w/other', ['/w/ws/tools']));
  });
});

describe('follow: who a process is', () => {
  const HOST = 100;
  const procs: Record<number, ProcInfo> = {
    100: { pid: 100, ppid: 50, argv: ['node', '/vscode/out/bootstrap-fork', '--type=extensionHost'] },
    101: { pid: 101, ppid: 100, argv: ['/vscode/node', '/vscode/extensions/typescript/tsserver.js', '--serverMode', 'partialSemantic'] },
    102: { pid: 102, ppid: 100, argv: ['/layers/rust/bin/rust-analyzer'] },
    103: { pid: 103, ppid: 102, argv: ['/layers/rust/bin/cargo', 'check'] },
    104: { pid: 104, ppid: 100, argv: ['sleep', '600'] },
    200: { pid: 200, ppid: 1, argv: ['bash'] },
    201: { pid: 201, ppid: 200, argv: ['/layers/node/bin/node', 'node_modules/eslint/bin/eslint.js'] },
  };
  const read = (pid: number) => procs[pid] ?? null;

  it('walks up to the first process it cannot read', () => {
    assert.deepEqual(
      ancestry(103, read).map((p) => p.pid),
      [103, 102, 100],
    );
  });

  it('names VS Code language servers below the extension host, and nothing else', () => {
    assert.equal(knownServer(ancestry(101, read), HOST)?.commands[0], 'typescript.restartTsServer');
    assert.equal(knownServer(ancestry(103, read), HOST)?.name, 'rust-analyzer', 'a child of the server is the server');
    assert.equal(knownServer(ancestry(104, read), HOST), undefined, 'an unknown program started by an extension');
    assert.equal(knownServer(ancestry(201, read), HOST), undefined, 'eslint run from a terminal is no VS Code server');
  });

  it('shows a command line cut to a readable length', () => {
    assert.equal(commandLine(procs[104], 'sleep'), 'sleep 600');
    assert.equal(commandLine(undefined, 'sleep'), 'sleep');
    assert.equal(commandLine({ pid: 1, ppid: 0, argv: ['x'.repeat(200)] }, '').length, 118);
  });
});

describe('follow: a workspace inside a view', () => {
  it('is one inside a view, or one a view lies in', () => {
    assert.ok(inAView(['/w/ws'], [{ base: '/w/ws' }]));
    assert.ok(inAView(['/w/m/project'], [{ base: '/w/b', at: '/w/m' }]));
    assert.ok(inAView(['/w'], [{ base: '/w/b', at: '/w/m' }]));
    assert.ok(!inAView(['/w/b'], [{ base: '/w/b', at: '/w/m' }]), 'the base of a view served elsewhere is not the view');
    assert.ok(!inAView(['/other'], [{ base: '/w/ws' }]));
  });
});
