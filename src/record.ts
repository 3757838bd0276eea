// The record a thread sends another thread for one message (or one control event). Client
// workers and the route thread both read and write it, so its layout lives here only.
//
//   [kind u8][flags u8][0 u16][cid u32][groups u32][subjLen u32][replyLen u32][hdrLen i32]
//   [payLen u32][tailLen u32] subject, group names ([u32 length][bytes] each), then the
//   canonical MSG tail ` [reply ][hdr ]size\r\n<payload>\r\n`, so a receiver delivers with
//   two copies.
// Little-endian. Every length is 32 bits: a subject, a queue name or a group count of any size
// a client may legally send fits (issue 10 §2). hdrLen < 0: no headers (PUB). FLAG_PLAIN:
// deliver to plain subscribers; each group name: deliver to one member of that queue group.
// `cid` is the publishing connection (0 for a route): a consumer that finds a subscriber
// backed up asks the publisher's thread to stall that connection (RecordKind.stall).

export const REC_HDR = 32;
export const FLAG_PLAIN = 1;

export const RecordKind = {
  msg: 1,
  /** Control: stall connection `cid` of the receiving thread for `payLen` ms (fast-producer stall). */
  stall: 2,
} as const;

/** Header of a message record; every field is checked to fit its 32 bits. */
export function writeRecordHeader(dst: DataView, o: number, flags: number, cid: number, nGroups: number, subjLen: number, replyLen: number, hdrLen: number, payLen: number, tailLen: number): void {
  // One check covers every field: the tail holds the payload (and the headers) and the reply.
  if (subjLen + tailLen + nGroups > 0xffffffff) {
    throw new RangeError(`record field out of range (subject ${subjLen}, reply ${replyLen}, groups ${nGroups}, payload ${payLen})`);
  }
  dst.setUint32(o, RecordKind.msg | (flags << 8), true);
  dst.setUint32(o + 4, cid, true);
  dst.setUint32(o + 8, nGroups, true);
  dst.setUint32(o + 12, subjLen, true);
  dst.setUint32(o + 16, replyLen, true);
  dst.setInt32(o + 20, hdrLen, true);
  dst.setUint32(o + 24, payLen, true);
  dst.setUint32(o + 28, tailLen, true);
}

/** A stall request for connection `cid` of the receiving thread. */
export const STALL_RECORD_BYTES = 12;
export function writeStallRecord(dst: DataView, o: number, cid: number, stallMs: number): void {
  dst.setUint32(o, RecordKind.stall, true);
  dst.setUint32(o + 4, cid, true);
  dst.setUint32(o + 8, stallMs, true);
}

/** One decoded record header; each reader keeps one and reuses it (no allocation per record). */
export class RecordView {
  kind = 0;
  flags = 0;
  cid = 0;
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
  /** Stall records: milliseconds. */
  stallMs = 0;

  /** Decode the record at offset `o` of `v` (positions are offsets in the same bytes). */
  read(v: DataView, o: number): void {
    const k = v.getUint32(o, true);
    this.kind = k & 0xff;
    this.cid = v.getUint32(o + 4, true);
    if (this.kind !== RecordKind.msg) {
      this.stallMs = v.getUint32(o + 8, true);
      return;
    }
    this.flags = (k >>> 8) & 0xff;
    const nGroups = (this.nGroups = v.getUint32(o + 8, true));
    const subjLen = v.getUint32(o + 12, true);
    const replyLen = v.getUint32(o + 16, true);
    this.hdrLen = v.getInt32(o + 20, true);
    const payLen = v.getUint32(o + 24, true);
    const tailLen = v.getUint32(o + 28, true);
    this.subjStart = o + REC_HDR;
    this.subjEnd = this.subjStart + subjLen;
    let ts = this.subjEnd;
    for (let i = 0; i < nGroups; i++) ts += 4 + v.getUint32(ts, true);
    this.tailStart = ts;
    this.tailEnd = ts + tailLen;
    this.replyStart = replyLen > 0 ? ts + 1 : -1;
    this.replyEnd = replyLen > 0 ? ts + 1 + replyLen : -1;
    this.payEnd = this.tailEnd - 2;
    this.payStart = this.payEnd - payLen;
  }
}
