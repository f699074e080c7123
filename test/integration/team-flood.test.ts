/**
 * A sustained flood of connections that never authenticate, from several addresses (127.0.0.2-9),
 * against a real relay: 20 legitimate peers (from 127.0.0.1) must still get in, and an agent that
 * was in before keeps working.
 */
import * as assert from 'assert';
import { WebSocket } from 'ws';
import { TeamFixture, eventually, startTeam } from './team-helpers';
import { RawPeer, signedEvent } from './team-raw';

const TEAM = 'acme';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Keeps `perAddress` connections open from each address, each reopened as soon as it closes; never says hello. */
class Flood {
  private stopped = false;
  private readonly open = new Set<WebSocket>();
  attempts = 0;

  constructor(
    private readonly url: string,
    addresses: string[],
    perAddress: number,
  ) {
    for (const a of addresses) for (let i = 0; i < perAddress; i++) this.one(a);
  }

  private one(localAddress: string): void {
    if (this.stopped) return;
    this.attempts++;
    const ws = new WebSocket(this.url, { perMessageDeflate: false, localAddress, handshakeTimeout: 10_000 });
    this.open.add(ws);
    ws.on('error', () => {});
    ws.on('close', () => {
      this.open.delete(ws);
      setTimeout(() => this.one(localAddress), 10).unref();
    });
  }

  stop(): void {
    this.stopped = true;
    for (const ws of this.open) ws.terminate();
  }
}

describe('team: a flood of unauthenticated connections does not keep teammates out', function () {
  this.timeout(180_000);
  let t: TeamFixture;
  let key: Buffer;

  before(async () => {
    t = await startTeam('strata-flood-', ['--team', TEAM]);
    key = t.key(TEAM);
  });
  after(async () => t?.cleanup());

  it('lets 20 legitimate peers join (3 tries each) while 8 addresses keep every pending slot they can', async () => {
    const insider = new RawPeer(t.url);
    await insider.handshake(TEAM, key);
    const flood = new Flood(
      t.url,
      Array.from({ length: 8 }, (_, i) => `127.0.0.${i + 2}`),
      24,
    );
    try {
      await sleep(2000); // the flood holds the slots before anyone legitimate comes
      // Each newcomer from an address of its own; a few tries each, as an agent's dialer would make.
      const joined: RawPeer[] = [];
      const tries: number[] = [];
      const join = async (i: number): Promise<void> => {
        for (let attempt = 1; attempt <= 3; attempt++) {
          const p = new RawPeer(t.url, { localAddress: `127.0.1.${i + 1}` });
          try {
            await p.handshake(TEAM, key);
            joined.push(p);
            tries.push(attempt);
            return;
          } catch {
            p.close();
            await sleep(200);
          }
        }
      };
      await Promise.all(Array.from({ length: 20 }, (_, i) => join(i)));
      assert.strictEqual(
        joined.length,
        20,
        `${joined.length} of 20 joined in 3 tries each while the flood made ${flood.attempts} attempts`,
      );
      assert.ok(flood.attempts > 300, `the flood kept going (${flood.attempts} attempts)`);
      // The one who was in before still hears the newcomers' decisions.
      const last = joined[19];
      last.send({ t: 'event', event: signedEvent(TEAM, last.identity, 1, [{ key: 'layer:probe', value: { active: true } }]) });
      await eventually('the insider to hear a newcomer', () =>
        insider.frames.some((f) => f.t === 'event' && f.event.origin === last.agent),
      );
      for (const p of joined) p.close();
    } finally {
      flood.stop();
      insider.close();
    }
  });
});
