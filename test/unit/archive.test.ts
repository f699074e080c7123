/**
 * The tar stream check of layer imports (daemon/archive.ts), on archives built here byte by byte:
 * what it lets through is exactly the archive up to its end marker, in any chunking; what it
 * refuses it refuses at the header, before the entry's data.
 */
import assert from 'node:assert/strict';
import { DEFAULT_IMPORT_LIMITS, ImportLimits, RATIO_FLOOR, TarCheck, importLimitsFromEnv, readNumber } from '../../daemon/archive';
import { StrataError } from '../../shared/errors';
import { END, entry, header, longName, pax, sealed } from '../tar';

const SPEC = entry({ name: 'layer.json', data: '{"format":2}\n' });
const FILES = entry({ name: 'files/', type: '5' });

function tar(...parts: Buffer[]): Buffer {
  return Buffer.concat([...parts, END]);
}

/** Feed `archive` in chunks of `step` bytes; returns what the check passed on. */
function run(archive: Buffer, step = archive.length, limits: ImportLimits = DEFAULT_IMPORT_LIMITS, compressed = Infinity): Buffer {
  const check = new TarCheck('/x.tar.gz', limits);
  const out: Buffer[] = [];
  for (let i = 0; i < archive.length && !check.ended; i += step) out.push(check.feed(archive.subarray(i, i + step), compressed));
  check.finish();
  return Buffer.concat(out);
}

function refused(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof StrataError, String(e));
    assert.equal(e.code, 'E_ARCHIVE');
    assert.match(e.message, message);
    return true;
  });
}

describe('layer archives: the tar stream check', () => {
  const good = tar(
    SPEC,
    FILES,
    entry({ name: 'files/bin/tool', data: 'x'.repeat(700) }),
    entry({ name: './files/lib', type: '5' }),
    entry({ name: 'files/link', type: '2', link: '/etc' }),
    entry({ name: 'files/hard', type: '1', link: 'files/bin/tool' }),
    entry({ name: 'files/fifo', type: '6' }),
    longName('files/' + 'd'.repeat(150) + '/file'),
    entry({ name: 'files/ddd', data: 'long' }),
    pax({ path: 'files/pax-named', mtime: '1.5' }),
    entry({ name: 'whatever', data: 'p' }),
  );

  for (const step of [1, 7, 511, 512, 513, 4096, good.length]) {
    it(`passes a good archive through unchanged in chunks of ${step} bytes`, () => {
      assert.deepEqual(run(good, step), good.subarray(0, good.length - 512));
    });
  }

  it('stops at the end marker: bytes after it never reach tar', () => {
    const out = run(Buffer.concat([good, entry({ name: '/etc/passwd', data: 'root' })]));
    assert.equal(out.length, good.length - 512);
  });

  it('reads POSIX ustar prefixes, GNU base-256 sizes and pax sizes', () => {
    const h = header({ name: 'tool', data: 'ab' }, 'ustar\x0000');
    sealed(h.fill(0, 345, 500).fill('files/bin', 345, 354));
    run(tar(SPEC, h, Buffer.from('ab'.padEnd(512, '\0'))));
    const big = Buffer.alloc(12);
    big[0] = 0x80;
    big.writeUInt32BE(3 * 2 ** 30, 8);
    assert.equal(readNumber(big, 0, 12), 3 * 2 ** 30);
    refused(() => run(tar(SPEC, pax({ size: String(2 ** 40) }), entry({ name: 'files/big' })), 512), /unpacks to more than/);
  });

  const cases: [string, Buffer, RegExp][] = [
    ['an absolute name', entry({ name: '/etc/cron.d/x', data: 'x' }), /unexpected entry "\/etc\/cron.d\/x"/],
    ['a name with ..', entry({ name: 'files/../../x', data: 'x' }), /unexpected entry "files\/..\/..\/x"/],
    ['a name outside files/', entry({ name: 'writable/files/x', data: 'x' }), /a layer archive holds only layer.json and files\//],
    ['a long name outside files/', Buffer.concat([longName('../x'), entry({ name: 'files/ok', data: 'x' })]), /unexpected entry "..\/x"/],
    ['a pax path outside files/', Buffer.concat([pax({ path: '/root/x' }), entry({ name: 'files/ok' })]), /unexpected entry "\/root\/x"/],
    ['a device', entry({ name: 'files/sda', type: '3' }), /entry "files\/sda" is of type "3"/],
    ['a block device', entry({ name: 'files/loop0', type: '4' }), /of type "4"/],
    ['a global pax header', entry({ name: 'files/g', type: 'g', data: '9 a=b\n' }), /of type "g"/],
    [
      'a file below a symlink',
      Buffer.concat([entry({ name: 'files/s', type: '2', link: '/etc' }), entry({ name: 'files/s/shadow', data: 'x' })]),
      /"files\/s\/shadow" lies below the symbolic link "files\/s"/,
    ],
    [
      'a hard link through a symlink',
      Buffer.concat([entry({ name: 'files/s', type: '2', link: '/etc' }), entry({ name: 'files/h', type: '1', link: 'files/s/shadow' })]),
      /lies below the symbolic link/,
    ],
    ['a hard link outside', entry({ name: 'files/h', type: '1', link: '/etc/shadow' }), /unexpected entry "\/etc\/shadow"/],
    ['files as a symlink', entry({ name: 'files', type: '2', link: '/etc' }), /files is not a folder/],
    ['a link with data', entry({ name: 'files/l', type: '2', link: 'x', size: 512 }), /link or folder with 512 bytes of data/],
    ['a file named like a folder', entry({ name: 'files/d/', data: 'x' }), /a file whose name ends in "\/"/],
    ['sparse files', Buffer.concat([pax({ 'GNU.sparse.size': '10' }), entry({ name: 'files/s' })]), /sparse files/],
  ];
  for (const [what, bad, message] of cases) {
    it(`refuses ${what}`, () => refused(() => run(tar(SPEC, FILES, bad)), message));
  }

  it('refuses layer.json that is not a regular file, and an archive without one', () => {
    refused(() => run(tar(entry({ name: 'layer.json', type: '2', link: '/etc/shadow' }))), /layer.json is not a regular file/);
    refused(() => run(tar(FILES)), /has no layer.json/);
  });

  it('refuses a damaged header, a malformed number and a truncated archive', () => {
    const h = Buffer.from(SPEC);
    h[0] ^= 1;
    refused(() => run(tar(h)), /a tar header is damaged/);
    const n = header({ name: 'layer.json' });
    n.write('12x', 124, 3, 'latin1');
    sealed(n);
    refused(() => run(tar(n)), /malformed number/);
    refused(() => run(good.subarray(0, 1500)), /ends in the middle of an entry/);
    refused(() => run(Buffer.from('not a tar archive at all'.padEnd(512, '!'))), /a tar header is damaged/);
  });

  it('refuses past the entry limit', () => {
    const limits = { ...DEFAULT_IMPORT_LIMITS, maxEntries: 3 };
    run(tar(SPEC, FILES, entry({ name: 'files/a' })), 512, limits);
    refused(
      () => run(tar(SPEC, FILES, entry({ name: 'files/a' }), entry({ name: 'files/b' })), 512, limits),
      /has more than 3 entries; refused/,
    );
  });

  it('refuses a declared size over the limit at its header, before any of its data', () => {
    const limits = { ...DEFAULT_IMPORT_LIMITS, maxBytes: 2 ** 30 };
    const check = new TarCheck('/x.tar.gz', limits);
    check.feed(SPEC);
    refused(() => check.feed(header({ name: 'files/zeros', size: 3 * 2 ** 30 })), /unpacks to more than 1073741824 bytes; refused/);
  });

  it('refuses unpacked bytes over the limit, and a bomb by its ratio once past the floor', () => {
    const zeros = Buffer.alloc(2 ** 20);
    const check = new TarCheck('/x.tar.gz', { ...DEFAULT_IMPORT_LIMITS, maxBytes: 2 ** 40 });
    check.feed(Buffer.concat([SPEC, header({ name: 'files/zeros', size: 2 ** 36 })]), 1000);
    // 1 KiB of gzip per MiB of zeros: fine below the floor, refused past it.
    let fed = 0;
    refused(() => {
      for (;;) {
        check.feed(zeros, (fed += 1) * 1024);
        assert.ok(fed * 2 ** 20 <= RATIO_FLOOR + 2 ** 20, 'refused right past the floor');
      }
    }, /unpacks to more than 200 times its size \(a decompression bomb\?\); refused/);
    const small = new TarCheck('/x.tar.gz', { ...DEFAULT_IMPORT_LIMITS, maxBytes: 1.5 * 2 ** 20 });
    small.feed(Buffer.concat([SPEC, header({ name: 'files/z', size: 2 ** 20 })]));
    small.feed(zeros);
    refused(() => small.feed(zeros), /unpacks to more than 1572864 bytes/);
  });

  it('takes its limits from the environment; 0 turns one off; nonsense is an error', () => {
    assert.deepEqual(importLimitsFromEnv({}), DEFAULT_IMPORT_LIMITS);
    assert.deepEqual(
      importLimitsFromEnv({ STRATA_IMPORT_MAX_BYTES: '1000', STRATA_IMPORT_MAX_ENTRIES: '10', STRATA_IMPORT_MAX_RATIO: '0' }),
      {
        maxBytes: 1000,
        maxEntries: 10,
        maxRatio: Infinity,
      },
    );
    assert.throws(() => importLimitsFromEnv({ STRATA_IMPORT_MAX_BYTES: '1G' }), /STRATA_IMPORT_MAX_BYTES=1G: expected a whole number/);
  });
});
