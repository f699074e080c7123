/** Tar archives built byte by byte, for tests of the import check (GNU headers unless told). */
export interface Entry {
  name: string;
  type?: string;
  data?: string | Buffer;
  size?: number;
  link?: string;
}

function octal(b: Buffer, off: number, len: number, n: number): void {
  b.write(n.toString(8).padStart(len - 1, '0') + '\0', off, len, 'latin1');
}

export function header(e: Entry, magic = 'ustar  \0'): Buffer {
  const h = Buffer.alloc(512);
  h.write(e.name, 0, 100, 'utf8');
  octal(h, 100, 8, 0o644);
  octal(h, 108, 8, 0);
  octal(h, 116, 8, 0);
  const size = e.size ?? (e.data ? Buffer.byteLength(e.data) : 0);
  octal(h, 124, 12, size);
  octal(h, 136, 12, 0);
  h.write(e.type ?? '0', 156, 1, 'latin1');
  if (e.link) h.write(e.link, 157, 100, 'utf8');
  h.write(magic, 257, 8, 'latin1');
  return sealed(h);
}

/** Set the header's checksum (after editing it). */
export function sealed(h: Buffer): Buffer {
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
  return h;
}

export function entry(e: Entry): Buffer {
  const data = typeof e.data === 'string' ? Buffer.from(e.data) : (e.data ?? Buffer.alloc(0));
  const pad = Buffer.alloc((512 - (data.length % 512)) % 512);
  return Buffer.concat([header(e), data, pad]);
}

export function longName(name: string): Buffer {
  return entry({ name: '././@LongLink', type: 'L', data: name + '\0' });
}

export function pax(records: Record<string, string>): Buffer {
  let text = '';
  for (const [k, v] of Object.entries(records)) {
    const body = ` ${k}=${v}\n`;
    let len = body.length + 1;
    while (String(len).length + body.length !== len) len = String(len).length + body.length;
    text += len + body;
  }
  return entry({ name: 'PaxHeaders/x', type: 'x', data: text });
}

/** The end-of-archive marker: two zero blocks. */
export const END = Buffer.alloc(1024);
