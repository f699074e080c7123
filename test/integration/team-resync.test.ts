/**
 * A node that asks its peers to catch it up again (`strata team reload` → TeamNode.resync) lets
 * each link answer with as much as on connect: the rate limit must not close a peer for answering.
 * A node in this process, with a small burst, and a hand-driven peer on the link it accepted.
 */
import * as assert from 'assert';
import { deriveKey } from '../../daemon/team/auth';
import { HlcClock } from '../../daemon/team/hlc';
import { Identity } from '../../daemon/team/identity';
import { DEFAULT_LIMITS, NodeLimits } from '../../daemon/team/limits';
import { catchUpCredit } from '../../daemon/team/links';
import { TeamNode } from '../../daemon/team/node';
import { TeamState } from '../../daemon/team/state';
import { CloseCodes } from '../../protocol';
import { eventually } from './team-helpers';
import { RawPeer, signedEvent } from './team-raw';

const TEAM = 'acme';
// Refills are too slow to matter here: only the burst and the credits count.
const LIMITS: Partial<NodeLimits> = { rate: 1, burst: 20, maxRegisters: 10, maxOrigins: 10 };

describe('team: a node asking its peers to catch it up again', function () {
  this.timeout(60000);
  const key = deriveKey(Buffer.from('the team secret'), TEAM);
  const credit = catchUpCredit({ ...DEFAULT_LIMITS, ...LIMITS });
  let node: TeamNode;
  let peer: RawPeer | undefined;
  let seq = 0;

  beforeEach(async () => {
    const identity = Identity.generate();
    node = new TeamNode({
      identity,
      team: TEAM,
      key,
      state: new TeamState(identity.id, new HlcClock(identity.id), { maxRegisters: 10, maxOrigins: 10 }),
      log: () => {},
      limits: LIMITS,
      listen: { host: '127.0.0.1', port: 0 },
      hooks: {
        stateChanged: () => {},
        presence: () => ({ user: 'test', host: 'test', active: null, held: [], applied: {}, busy: [], has: {} }),
      },
    });
    await node.start();
    peer = new RawPeer(`ws://127.0.0.1:${node.port}`);
    seq = 0;
    await peer.handshake(TEAM, key);
    await peer.next('have');
    // The peer spends its connect credit (as its catch-up would), then asks for a `synced` so
    // every frame of it has been counted.
    sendEvents(peer, credit);
    peer.send({ t: 'have', seen: {} });
    await peer.next('synced');
  });
  afterEach(async () => {
    peer?.close();
    await node?.stop();
  });

  /** n valid events (a peer's history), each a frame the node counts and takes. */
  function sendEvents(p: RawPeer, n: number): void {
    for (let i = 0; i < n; i++)
      p.send({ t: 'event', event: signedEvent(TEAM, p.identity, ++seq, [{ key: 'layer:node20', value: { active: seq % 2 === 0 } }]) });
  }

  it('keeps the link open while a peer answers its `have` with more frames than the burst', async () => {
    const p = peer!;
    node.resync();
    await p.next('have');
    sendEvents(p, credit);
    p.send({ t: 'have', seen: {} });
    await p.next('synced');
    assert.strictEqual(p.closed, null);
    assert.deepStrictEqual(node.connectedAgents(), [p.agent]);
  });

  it('gives no credit a peer did not get asked for: the same frames unasked are rate limited', async () => {
    const p = peer!;
    // The peer's own asking (`have`) earns it nothing.
    p.send({ t: 'have', seen: {} });
    sendEvents(p, credit);
    assert.strictEqual((await p.whenClosed()).code, CloseCodes.RATE_LIMITED);
    await eventually('the node to drop the peer', () => node.connectedAgents().length === 0);
  });
});
