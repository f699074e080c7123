/**
 * What the schemas mean at the edges: the control client refuses a malformed result, and the agent
 * names the file, field and reason of a bad state.json or team.json instead of crashing.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { AgentClient } from '../../shared/client';
import { StrataError } from '../../shared/errors';
import { Agent } from '../../daemon/agent';
import { TeamService } from '../../daemon/team/service';

describe('control client: checks every result', () => {
  let dir: string;
  let server: net.Server;
  let client: AgentClient;
  /** What the fake agent answers to each method. */
  let answers: Record<string, unknown>;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-client-'));
    const sock = path.join(dir, 'sock');
    server = net.createServer((s) => {
      let buf = '';
      s.setEncoding('utf8');
      s.on('data', (d: string) => {
        buf += d;
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) {
          const req = JSON.parse(buf.slice(0, i)) as { id: number; method: string };
          buf = buf.slice(i + 1);
          s.write(JSON.stringify({ id: req.id, ...(answers[req.method] as object) }) + '\n');
        }
      });
    });
    await new Promise<void>((res) => server.listen(sock, res));
    client = new AgentClient(sock);
    await client.connect();
  });
  after(() => {
    client.close();
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('resolves a well-formed result', async () => {
    answers = { 'layer.rm': { ok: true, result: { removed: 'gcc' } } };
    assert.deepEqual(await client.call('layer.rm', { name: 'gcc' }), { removed: 'gcc' });
  });

  it('rejects a malformed result with E_BAD_REQUEST naming the method and the field', async () => {
    answers = { 'view.list': { ok: true, result: [{ base: '/w', mountpoint: '/w', inPlace: 'yes', state: 'mounted' }] } };
    await assert.rejects(client.call('view.list', {}), (e: unknown) => {
      assert.ok(e instanceof StrataError);
      assert.equal(e.code, 'E_BAD_REQUEST');
      assert.equal(e.message, 'agent sent a malformed view.list result: [0].inPlace: must be true or false');
      assert.match(e.hint ?? '', /strata agent stop/);
      return true;
    });
  });

  it('keeps the code of an error response', async () => {
    answers = { 'layer.show': { ok: false, error: { code: 'E_LAYER_UNKNOWN', message: 'no layer named "x"' } } };
    await assert.rejects(
      client.call('layer.show', { name: 'x' }),
      (e: unknown) => e instanceof StrataError && e.code === 'E_LAYER_UNKNOWN',
    );
  });
});

describe('agent: its own files, checked on load', () => {
  let home: string;
  let logs: string[];
  beforeEach(() => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-files-'));
    logs = [];
  });
  afterEach(() => fs.rmSync(home, { recursive: true, force: true }));
  const agent = () => new Agent({ home, socket: path.join(home, 'sock'), log: (m) => logs.push(m) });

  it('a bad state.json is named with its field and reason, kept aside, and the agent starts with nothing active', async () => {
    const file = path.join(home, 'state.json');
    fs.writeFileSync(file, JSON.stringify({ format: 1, active: ['gcc'], views: [{ at: '/m' }] }));
    const a = agent();
    await a.start();
    assert.ok(
      logs.some((l) => l.includes(`${file}: views[0].base: must be a string`)),
      logs.join('\n'),
    );
    assert.equal(fs.existsSync(file), false);
    assert.equal(fs.readdirSync(home).filter((n) => n.startsWith('state.json.broken-')).length, 1);
    assert.deepEqual((await a.status()).active, []);
    await a.stop();
  });

  it('a bad team.json is named with its field and reason, and the agent stays out of the team', async () => {
    const file = path.join(home, 'team.json');
    fs.writeFileSync(
      file,
      JSON.stringify({
        format: 1,
        agentId: 'me-1',
        name: 'me',
        teamFile: '/t',
        spec: { format: 1, team: 'acme', relays: [] },
        relays: [],
        held: [],
      }),
    );
    const team = new TeamService(agent(), home, (m) => logs.push(m));
    await team.start();
    assert.equal(team.joined, false);
    assert.ok(
      logs.some((l) => l.includes(`${file}: listen: must be a string`)),
      logs.join('\n'),
    );
    fs.writeFileSync(file, '{"format": 1');
    await team.start();
    assert.ok(
      logs.some((l) => l.includes(`${file}: not valid JSON`)),
      logs.join('\n'),
    );
  });
});
