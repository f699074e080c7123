/**
 * The team over NATS with TLS (docs/nats/office-tls.conf): a tls:// server whose certificate a
 * private CA signed. An agent whose credentials name the CA joins and follows the team; one
 * without it is refused with an error naming the server and what to fix.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { writeTree } from './helpers';
import { TeamFixture, eventually, layerDigests } from './team-helpers';
import { PASSWORDS, freePort, startNats } from './nats-helpers';
import { TeamStatus } from '../../protocol';

describe('team over NATS with TLS (tls://)', function () {
  this.timeout(120000);
  let t: TeamFixture;

  after(async () => t?.cleanup());

  it('joins a server signed by a private CA named in the credentials, and refuses without it', async () => {
    t = new TeamFixture('strata-nats-tls-');
    const dir = t.dir;
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
    const srv = await startNats(f('nats'), 'office-tls.conf', {
      NATS_PORT: String(port),
      NATS_STORE: f('store'),
      NATS_CERT: f('server.pem'),
      NATS_KEY: f('server.key'),
    });
    t.stopServer = () => srv.stop();
    t.url = `tls://127.0.0.1:${port}`;
    writeTree(f('node20'), { 'bin/node': '#!/bin/sh\necho v20\n' });
    const creds = (name: string, extra: object) => {
      const c = f(`${name}.json`);
      fs.writeFileSync(c, JSON.stringify({ user: 'alice', password: PASSWORDS.ACME_ALICE_PASSWORD, ...extra }), { mode: 0o600 });
      return c;
    };
    const mk = () =>
      t.agent({
        prefix: 'strata-nats-tls-',
        base: { 'bin/node': '#!/bin/sh\necho system\n' },
        layers: { node20: ['--from', f('node20')] },
      });
    const a = await mk();
    t.writeTeamFile({ layers: await layerDigests(a.home, ['node20']) });

    const noCa = await a.cli(
      'team',
      'join',
      t.url,
      '--secret-file',
      t.secret,
      '--team-file',
      t.teamFile,
      '--credentials',
      creds('plain', {}),
    );
    assert.strictEqual(noCa.code, 1);
    assert.match(noCa.stderr, new RegExp(`E_TEAM_CONNECT: TLS with the NATS server at nats://127.0.0.1:${port} failed`));
    assert.match(noCa.stderr, /name its certificate as "ca" in the credentials file/);

    const withCa = creds('ca', { ca: f('ca.pem') });
    await t.join(a, 'alice', ['--credentials', withCa]);
    const b = await mk();
    await t.join(b, 'bob', ['--credentials', withCa]);
    await a.ok('activate', 'node20');
    await eventually('B to follow over TLS', () => fs.readFileSync(path.join(b.mnt, 'bin/node'), 'utf8').includes('v20'));
    const st = await b.json<TeamStatus>('team', 'status');
    assert.strictEqual(st.relays?.[0].state, 'connected');
  });
});
