/**
 * Connecting to the team's NATS servers: credentials from a 0600 file (never a command line),
 * TLS for tls:// and nats+wss://, WebSocket through the `ws` package on Node 20 (it has no global
 * WebSocket), and a refusal explained: which server, and what to fix.
 */
import * as fs from 'fs';
import { WebSocket as WsWebSocket } from 'ws';
import {
  Authenticator,
  NatsConnection,
  credsAuthenticator,
  nkeyAuthenticator,
  tokenAuthenticator,
  usernamePasswordAuthenticator,
  wsconnect,
} from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { NatsCredentialsSchema, parseJson } from '../../../protocol';
import { StrataError } from '../../../shared/errors';
import { Servers } from './names';

export interface Credentials {
  file: string;
  authenticator?: Authenticator;
  ca?: string;
}

/** Read a credentials file: a regular file only its owner can read; JSON, a .creds file or an nkey seed. */
export function readCredentials(file: string): Credentials {
  let text: string;
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) throw new Error('it is not a regular file');
    if (st.mode & 0o077) throw new Error(`it is accessible by group or others; run: chmod 600 ${file}`);
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new StrataError(
      'E_TEAM_SECRET',
      `cannot use the NATS credentials ${file}: ${(e as Error).message}`,
      'Keep NATS credentials in a file only you can read (chmod 600); see docs/nats.md.',
    );
  }
  const enc = new TextEncoder();
  if (text.includes('-----BEGIN NATS USER JWT-----')) return { file, authenticator: credsAuthenticator(enc.encode(text)) };
  const trimmed = text.trim();
  if (/^SU[A-Z2-7]{56}$/.test(trimmed)) return { file, authenticator: nkeyAuthenticator(enc.encode(trimmed)) };
  let c;
  try {
    c = parseJson(NatsCredentialsSchema, text, file);
  } catch (e) {
    throw new StrataError('E_TEAM_SECRET', (e as Error).message, 'See docs/nats.md for the forms a NATS credentials file may take.');
  }
  const auth =
    'user' in c
      ? usernamePasswordAuthenticator(c.user, c.password)
      : 'token' in c
        ? tokenAuthenticator(c.token)
        : 'nkeySeed' in c
          ? nkeyAuthenticator(enc.encode(c.nkeySeed))
          : undefined;
  return { file, authenticator: auth, ca: c.ca };
}

/** The `ws` package as the WebSocket the NATS client expects (Node 20 has no global one). */
function ensureWebSocket(): void {
  const g = globalThis as { WebSocket?: unknown };
  g.WebSocket ??= WsWebSocket;
}

/** What went wrong, said for the user: the server, and what to fix. */
export function connectError(urls: string[], creds: Credentials | null, e: unknown): StrataError {
  const err = e as Error & { code?: string };
  const where = urls.join(', ');
  const msg = err?.message ?? String(e);
  if (/authorization|authentication|user authentication/i.test(`${err?.name} ${msg}`)) {
    return new StrataError(
      'E_TEAM_CONNECT',
      `the NATS server at ${where} refused this agent's credentials${creds ? ` from ${creds.file}` : ' (none were given)'}: ${msg}`,
      creds
        ? `Check the user and password (or nkey seed, or token) in ${creds.file} against that server's accounts; see docs/nats.md.`
        : 'Join with --credentials FILE (a 0600 file with the NATS user and password); see docs/nats.md.',
    );
  }
  if (/jetstream/i.test(msg)) {
    return new StrataError(
      'E_TEAM_CONNECT',
      `the NATS server at ${where} does not offer JetStream to this account: ${msg}`,
      'Enable JetStream on the server and for the team\'s account ("jetstream: enabled"); a leaf node without JetStream needs the hub\'s domain as "jetstreamDomain" in the team file. See docs/nats.md.',
    );
  }
  if (/tls|certificate|self.signed|ssl/i.test(msg)) {
    return new StrataError(
      'E_TEAM_CONNECT',
      `TLS with the NATS server at ${where} failed: ${msg}`,
      'For a server signed by a private CA, name its certificate as "ca" in the credentials file.',
    );
  }
  return new StrataError(
    'E_TEAM_CONNECT',
    `cannot reach the NATS server at ${where}: ${msg}`,
    'Check that nats-server runs there and that the address and port (and scheme: nats://, tls://, nats+wss://) are right.',
  );
}

/** One connection to the team's servers; it reconnects by itself for as long as it lives. */
export async function connectNats(srv: Servers, creds: Credentials | null, name: string): Promise<NatsConnection> {
  const common = {
    servers: srv.servers,
    name,
    authenticator: creds?.authenticator,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    reconnectJitter: 500,
    pingInterval: 10_000,
    timeout: 5000,
  };
  try {
    if (srv.websocket) {
      ensureWebSocket();
      return await wsconnect(common);
    }
    return await connect({ ...common, ...(srv.tls || creds?.ca ? { tls: creds?.ca ? { caFile: creds.ca } : {} } : {}) });
  } catch (e) {
    throw connectError(srv.servers, creds, e);
  }
}
