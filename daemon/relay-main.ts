/**
 * The standalone relay process: `node dist/relay.js --listen HOST:PORT --secret-file FILE [--team
 * TEAM] [--state-file FILE] [--tls-cert PEM --tls-key PEM]`, normally run by `strata relay`. Under
 * an IPC channel it reports {ready: {url, id}} or {error: ErrorInfo} for the CLI to print, and stops
 * when the CLI is gone; on its own it logs both. Stops on SIGTERM and SIGINT.
 */
import * as fs from 'fs';
import * as path from 'path';
import { parseArgs } from 'util';
import { RelayReport } from '../protocol';
import { StrataError } from '../shared/errors';
import { runRelay } from './team/relay';

function log(m: string): void {
  process.stderr.write(`${new Date().toISOString()} ${m}\n`);
}

function report(r: RelayReport): Promise<void> {
  if (!process.send) {
    log(
      'ready' in r ? `[relay] ${r.ready.id} listening on ${r.ready.url}` : `[relay] failed to start: ${r.error.code}: ${r.error.message}`,
    );
    return Promise.resolve();
  }
  return new Promise((res) => process.send!(r, undefined, undefined, () => res()));
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      listen: { type: 'string' },
      'secret-file': { type: 'string' },
      team: { type: 'string' },
      'state-file': { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
    },
    strict: true,
  });
  const { listen, team, 'state-file': stateFile, 'tls-cert': cert, 'tls-key': key } = values;
  const secretFile = values['secret-file'];
  if (!listen || !secretFile || !cert !== !key) {
    log('[relay] needs --listen HOST:PORT and --secret-file FILE; --tls-cert and --tls-key go together');
    return 2;
  }
  let relay: Awaited<ReturnType<typeof runRelay>>;
  try {
    const tls = cert && key ? { cert: fs.readFileSync(cert), key: fs.readFileSync(key) } : undefined;
    relay = await runRelay({ listen, secretFile: path.resolve(secretFile), team, stateFile, tls, log });
  } catch (e) {
    // E_TEAM_LISTEN (a busy port) and a malformed --listen carry their own code already.
    const err =
      e instanceof StrataError
        ? e
        : new StrataError('E_TEAM_SECRET', (e as Error).message, 'Check --listen and the secret file (chmod 600).');
    await report({ error: err.toInfo() });
    return 1;
  }
  await report({ ready: { url: relay.url, id: relay.node.id } });
  await new Promise<void>((res) => {
    let stopping = false;
    const stop = () => {
      if (stopping) return;
      stopping = true;
      void relay.stop().then(res);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    process.on('disconnect', stop);
  });
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    log(`[relay] ${(e as Error).message}`);
    process.exit(2);
  },
);
