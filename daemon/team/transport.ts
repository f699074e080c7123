/**
 * What the team service, status and pulls need from a transport: the built-in one (node.ts: agents
 * and relays over WebSocket links) or NATS JetStream (nats/node.ts). Everything above it (CLI,
 * extension, drift, holds, --when-idle, history, revert, slots) is the same over either.
 */
import type { Presence, TeamEvent } from '../../protocol/team';
import type { Result } from '../../protocol/control';
import { isNatsUrl } from '../../protocol/nats';
import { StrataError } from '../../shared/errors';
import type { NodeLimits } from './limits';
import type { PeerInfo } from './links';

/** What `team prune` removed (or would remove) from a store, and how many archives it kept. */
export type Pruned = Omit<Result<'team.prune'>, 'dryRun'>;

/** A shared store of layer archives (the NATS Object Store): pulls come from it instead of a teammate. */
export interface LayerStore {
  /** A pull source standing for the store when it holds `digest`'s archive, or null. */
  source(layer: string, digest: string): Promise<{ agent: string; user: string; host: string } | null>;
  /** The archive of `digest` was refused (it failed a check): drop it so a teammate publishes it again. */
  refuse(digest: string, nuid: string | null, why: string): Promise<void>;
  /** Delete the archives whose digest is not in `keep` (dryRun: only list them). */
  prune(keep: ReadonlySet<string>, dryRun: boolean): Promise<Pruned>;
}

export interface TeamTransport {
  readonly id: string;
  /** The port accepting teammates (built-in transport with --listen only). */
  readonly port: number;
  readonly limits: NodeLimits;
  /** The teammates' latest presences, least recently heard first. */
  readonly presences: ReadonlyMap<string, Presence>;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Send a decision made here (already recorded and saved in the state). */
  publish(ev: TeamEvent): void;
  /** Tell the team what this agent runs now. */
  announce(): void;
  /** Get again what this agent lacks, the registers' winners included (after a team file names more layers). */
  resync(): void;
  heardAt(agent: string): number | undefined;
  peers(): PeerInfo[];
  connectedAgents(): string[];
  reachable(agent: string): boolean;
  pullFrom(
    agent: string,
    layer: string,
    digest: string,
    offset: number,
    write: (offset: number, data: Buffer, total: number) => Promise<void>,
  ): Promise<void>;
  layerStore?: LayerStore;
  /** Where the transport's log stands now; `saved(mark)` once the state as of then is on disk (resume point). */
  mark?(): number;
  saved?(mark: number): void;
  /** Resolves once a decision is stored where teammates read it (or after timeoutMs). */
  delivered?(ev: TeamEvent, timeoutMs: number): Promise<void>;
}

/** A join address: a Strata relay (ws://, wss://) or a NATS server (protocol/nats.ts); E_BAD_REQUEST otherwise. */
export function checkTeamUrl(u: string): void {
  if (/^wss?:\/\/[^\s/]+/.test(u) || isNatsUrl(u)) return;
  throw new StrataError(
    'E_BAD_REQUEST',
    `"${u}" is not a ws:// or wss:// address (a Strata relay) nor a nats://, tls://, nats+ws:// or nats+wss:// one`,
    'Give the relay address, like ws://127.0.0.1:7450, or a NATS server, like nats://nats.example:4222.',
  );
}
