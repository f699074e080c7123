/**
 * Real nats-server processes for the NATS team suites, configured with the documented configs
 * (docs/nats/*.conf, copied into a temp folder with the accounts they include), on free loopback
 * ports, each with its own JetStream store.
 */
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { ChildProcess, spawn } from 'child_process';
import { eventually } from './team-helpers';

const DOCS = path.resolve(__dirname, '..', '..', '..', 'docs', 'nats');

export const PASSWORDS = {
  ACME_ALICE_PASSWORD: 'alice-s3cret-for-tests',
  ACME_BOB_PASSWORD: 'bob-s3cret-for-tests',
  ACME_CAROL_PASSWORD: 'carol-s3cret-for-tests',
  GLOBEX_DAVE_PASSWORD: 'dave-s3cret-for-tests',
};

export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => res(port));
    });
  });
}

export interface NatsServer {
  url: string;
  /** The WebSocket listener (office.conf), as a team file names it: nats+ws://. */
  wsUrl: string | null;
  port: number;
  store: string;
  proc: ChildProcess;
  log(): string;
  /** Stop it (SIGTERM, or SIGKILL) and wait for the exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Start it again with the same config, port and store. */
  start(): Promise<void>;
}

/** A nats-server with docs/nats/<conf>, its variables from `vars`. */
export async function startNats(dir: string, conf: string, vars: Record<string, string>): Promise<NatsServer> {
  fs.mkdirSync(dir, { recursive: true });
  for (const f of [conf, 'accounts.conf']) fs.copyFileSync(path.join(DOCS, f), path.join(dir, f));
  return runNats(dir, conf, vars);
}

/** A nats-server with the config `conf` in `dir` (the benchmarks write their own), once it says it is ready. */
export async function runNats(dir: string, conf: string, vars: Record<string, string>): Promise<NatsServer> {
  const port = Number(vars.NATS_PORT);
  const store = vars.NATS_STORE;
  let out = '';
  const srv: NatsServer = {
    url: `nats://127.0.0.1:${port}`,
    wsUrl: vars.NATS_WS_PORT ? `nats+ws://127.0.0.1:${vars.NATS_WS_PORT}` : null,
    port,
    store,
    proc: null as unknown as ChildProcess,
    log: () => out,
    stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
      const p = srv.proc;
      if (p.exitCode !== null || p.signalCode !== null) return;
      const exited = new Promise((r) => p.once('exit', r));
      p.kill(signal);
      await exited;
    },
    start: async () => {
      const mark = out.length;
      const p = spawn('nats-server', ['-c', path.join(dir, conf)], {
        cwd: dir,
        env: { ...process.env, ...PASSWORDS, ...vars },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      srv.proc = p;
      p.stdout!.on('data', (d) => (out += String(d)));
      p.stderr!.on('data', (d) => (out += String(d)));
      await eventually(`nats-server ${conf} on ${port} to be ready`, () => {
        if (p.exitCode !== null) throw new Error(`nats-server exited ${p.exitCode}: ${out.slice(mark)}`);
        return out.slice(mark).includes('Server is ready');
      });
    },
  };
  await srv.start();
  return srv;
}

/** A single office server (docs/nats/office.conf) on a free port. */
export async function startOffice(dir: string): Promise<NatsServer> {
  const [port, ws] = [await freePort(), await freePort()];
  return startNats(dir, 'office.conf', { NATS_PORT: String(port), NATS_WS_PORT: String(ws), NATS_STORE: path.join(dir, 'store') });
}

/** Three clustered servers (docs/nats/cluster.conf). */
export async function startCluster(dir: string): Promise<NatsServer[]> {
  const ports = await Promise.all([0, 1, 2, 3, 4, 5].map(() => freePort()));
  const routes = Object.fromEntries([0, 1, 2].map((i) => [`NATS_ROUTE_${i + 1}`, `nats://127.0.0.1:${ports[3 + i]}`]));
  return Promise.all(
    [0, 1, 2].map((i) =>
      startNats(path.join(dir, `n${i + 1}`), 'cluster.conf', {
        NATS_NAME: `n${i + 1}`,
        NATS_PORT: String(ports[i]),
        NATS_CLUSTER_PORT: String(ports[3 + i]),
        NATS_STORE: path.join(dir, `n${i + 1}`, 'store'),
        ...routes,
      }),
    ),
  );
}

/** A credentials file (0600) for one of the accounts' users. */
export function writeCredentials(dir: string, user: string, password: string): string {
  const f = path.join(dir, `${user}.nats.json`);
  fs.writeFileSync(f, JSON.stringify({ user, password }) + '\n', { mode: 0o600 });
  return f;
}

/** Credentials files for the acme users alice, bob and carol. */
export function teamCredentials(dir: string): Record<'alice' | 'bob' | 'carol', string> {
  return {
    alice: writeCredentials(dir, 'alice', PASSWORDS.ACME_ALICE_PASSWORD),
    bob: writeCredentials(dir, 'bob', PASSWORDS.ACME_BOB_PASSWORD),
    carol: writeCredentials(dir, 'carol', PASSWORDS.ACME_CAROL_PASSWORD),
  };
}

/** A hub (docs/nats/hub.conf, JetStream domain "hub") and an office's leaf node (docs/nats/leaf.conf) dialling it as alice. */
export async function startHubAndLeaf(dir: string): Promise<{ hub: NatsServer; leaf: NatsServer }> {
  const [port, leafPort, officePort] = [await freePort(), await freePort(), await freePort()];
  const hub = await startNats(path.join(dir, 'hub'), 'hub.conf', {
    NATS_PORT: String(port),
    NATS_LEAF_PORT: String(leafPort),
    NATS_STORE: path.join(dir, 'hub', 'store'),
  });
  const leaf = await startNats(path.join(dir, 'leaf'), 'leaf.conf', {
    NATS_PORT: String(officePort),
    NATS_HUB: `nats-leaf://alice:${PASSWORDS.ACME_ALICE_PASSWORD}@127.0.0.1:${leafPort}`,
    NATS_STORE: path.join(dir, 'leaf', 'store'),
  });
  await eventually('the leaf node to join the hub', () => /Leafnode connection created/.test(hub.log()));
  return { hub, leaf };
}
