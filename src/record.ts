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
