// The record a thread writes into another thread's ring for one message. Client workers
// and the route thread both read and write it, so its layout lives here only.
//
//   [flags u8][groups u8][subjLen u16][replyLen u16][0 u16][hdrLen i32][payLen u32][tailLen u32]
//   subject, group names (u16 length + bytes each), then the canonical MSG tail
//   ` [reply ][hdr ]size\r\n<payload>\r\n`, so a receiver delivers with two copies.
// Little-endian. hdrLen < 0: no headers (PUB). FLAG_PLAIN: deliver to plain subscribers;
// each group name: deliver to one member of that queue group.

export const REC_HDR = 20;
export const FLAG_PLAIN = 1;

export function writeRecordHeader(dst: Buffer, o: number, flags: number, nGroups: number, subjLen: number, replyLen: number, hdrLen: number, payLen: number, tailLen: number): void {
  dst[o] = flags;
  dst[o + 1] = nGroups;
  dst[o + 2] = subjLen & 0xff;
  dst[o + 3] = subjLen >>> 8;
  dst[o + 4] = replyLen & 0xff;
  dst[o + 5] = replyLen >>> 8;
  dst[o + 6] = 0;
  dst[o + 7] = 0;
  dst.writeInt32LE(hdrLen, o + 8);
  dst.writeUInt32LE(payLen, o + 12);
  dst.writeUInt32LE(tailLen, o + 16);
}

/** One decoded record header; each reader keeps one and reuses it (no allocation per record). */
export class RecordView {
  flags = 0;
  nGroups = 0;
  /** Subject: d[subjStart, subjEnd). Group names follow it. */
  subjStart = 0;
  subjEnd = 0;
  /** Reply (inside the tail), or -1. */
  replyStart = -1;
  replyEnd = -1;
  hdrLen = -1;
  /** Payload with headers (inside the tail). */
  payStart = 0;
  payEnd = 0;
  /** The canonical MSG tail: d[tailStart, tailEnd). */
  tailStart = 0;
  tailEnd = 0;

  read(d: Buffer, o: number): void {
    this.flags = d[o];
    const nGroups = (this.nGroups = d[o + 1]);
    const subjLen = d[o + 2] | (d[o + 3] << 8);
    const replyLen = d[o + 4] | (d[o + 5] << 8);
    this.hdrLen = d.readInt32LE(o + 8);
    const payLen = d.readUInt32LE(o + 12);
    const tailLen = d.readUInt32LE(o + 16);
    this.subjStart = o + REC_HDR;
    this.subjEnd = this.subjStart + subjLen;
    let ts = this.subjEnd;
    for (let i = 0; i < nGroups; i++) ts += 2 + (d[ts] | (d[ts + 1] << 8));
    this.tailStart = ts;
    this.tailEnd = ts + tailLen;
    this.replyStart = replyLen > 0 ? ts + 1 : -1;
    this.replyEnd = replyLen > 0 ? ts + 1 + replyLen : -1;
    this.payEnd = this.tailEnd - 2;
    this.payStart = this.payEnd - payLen;
  }
}
