/**
 * The team over NATS with TLS (docs/nats/office-tls.conf): a tls:// server whose certificate a
 * private CA signed. An agent whose credentials name the CA joins and follows the team; one
 * without it is refused with an error naming the server and what to fix.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { Env, makeEnv, writeTree } from './helpers';
import { eventually, writeSecret } from './team-helpers';
import { NatsServer, PASSWORDS, freePort, startNats } from './nats-helpers';
import { TeamStatus } from '../../protocol';
import { digestLayerDir } from '../../daemon/team/digest';

describe('team over NATS with TLS (tls://)', function () {
  this.timeout(120000);
  let dir: string;
  let srv: NatsServer;
  const agents: Env[] = [];

  after(async () => {
    for (const e of agents) await e.cleanup();
    await srv?.stop();
    if (!process.env.STRATA_KEEP_TEST_DIRS) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('joins a server signed by a private CA named in the credentials, and refuses without it', async () => {
    dir = fs.mkdtempSync('/tmp/strata-nats-tls-');
    const f = (n: string) => path.join(dir, n);
    const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
    ssl(
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
      '-days',
      '2',
      '-subj',
      '/CN=strata test CA',
    );
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
    fs.writeFileSync(f('san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
    ssl(
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      'server.pem',
      '-days',
      '2',
      '-extfile',
      'san.ext',
    );
    const port = await freePort();
    srv = await startNats(f('nats'), 'office-tls.conf', {
      NATS_PORT: String(port),
      NATS_STORE: f('store'),
      NATS_CERT: f('server.pem'),
      NATS_KEY: f('server.key'),
    });
    const url = `tls://127.0.0.1:${port}`;
    const secret = writeSecret(dir);
    writeTree(f('node20'), { 'bin/node': '#!/bin/sh\necho v20\n' });
    const teamFile = f('strata.team.json');
    const creds = (name: string, extra: object) => {
      const c = f(`${name}.json`);
      fs.writeFileSync(c, JSON.stringify({ user: 'alice', password: PASSWORDS.ACME_ALICE_PASSWORD, ...extra }), { mode: 0o600 });
      return c;
    };
    const mk = async () => {
      const e = makeEnv('strata-nats-tls-');
      agents.push(e);
      writeTree(e.base, { 'bin/node': '#!/bin/sh\necho system\n' });
      await e.ok('layer', 'create', 'node20', '--from', f('node20'));
      await e.ok('view', 'add', e.base, '--at', e.mnt);
      return e;
    };
    const a = await mk();
    const layers = { node20: { digest: await digestLayerDir(path.join(a.home, 'layers', 'node20')) } };
    fs.writeFileSync(teamFile, JSON.stringify({ format: 1, team: 'acme', relays: [url], layers, defaults: [], slots: {} }));

    const noCa = await a.cli('team', 'join', url, '--secret-file', secret, '--team-file', teamFile, '--credentials', creds('plain', {}));
    assert.strictEqual(noCa.code, 1);
    assert.match(noCa.stderr, new RegExp(`E_TEAM_CONNECT: TLS with the NATS server at nats://127.0.0.1:${port} failed`));
    assert.match(noCa.stderr, /name its certificate as "ca" in the credentials file/);

    const withCa = creds('ca', { ca: f('ca.pem') });
    await a.ok('team', 'join', url, '--secret-file', secret, '--team-file', teamFile, '--credentials', withCa, '--name', 'alice');
    const b = await mk();
    await b.ok('team', 'join', url, '--secret-file', secret, '--team-file', teamFile, '--credentials', withCa, '--name', 'bob');
    await a.ok('activate', 'node20');
    await eventually('B to follow over TLS', () => fs.readFileSync(path.join(b.mnt, 'bin/node'), 'utf8').includes('v20'));
    const st = await b.json<TeamStatus>('team', 'status');
    assert.strictEqual(st.relays?.[0].state, 'connected');
  });
});
