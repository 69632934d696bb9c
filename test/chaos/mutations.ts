import type { Rng } from './rng.js';

/*
 * Frame mutations for the live fuzzer, written from the wire format in PROTOCOL.md
 * (relay messages: [version][type][body]; mesh frames: records [type][u16 length][body]).
 * Each takes a valid frame and returns a new buffer; the input is never changed.
 */

export type Mutation =
  | 'bit-flip'
  | 'truncate'
  | 'type-byte'
  | 'version-byte'
  | 'length-field'
  | 'oversize'
  | 'garbage-body'
  | 'duplicate'
  | 'valid';

export const RELAY_MUTATIONS: readonly Mutation[] = [
  'bit-flip',
  'truncate',
  'type-byte',
  'version-byte',
  'oversize',
  'garbage-body',
  'duplicate',
  'valid',
];

export const MESH_MUTATIONS: readonly Mutation[] = [...RELAY_MUTATIONS, 'length-field'];

/** Largest relay message a server accepts (PROTOCOL.md, "Size limits"). */
const MAX_RELAY_MESSAGE = 8820;

function randomBytes(rng: Rng, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) out[i] = rng.int(0, 256);
  return out;
}

/** Applies `mutation` to `frame`. `duplicate` and `valid` return a copy (the caller sends it twice / once). */
export function mutate(rng: Rng, mutation: Mutation, frame: Buffer): Buffer {
  const out = Buffer.from(frame);
  switch (mutation) {
    case 'bit-flip': {
      for (let flips = rng.int(1, 9); flips > 0 && out.length > 0; flips--) {
        const at = rng.int(0, out.length);
        out[at] = (out[at] as number) ^ (1 << rng.int(0, 8));
      }
      return out;
    }
    case 'truncate':
      return out.subarray(0, rng.int(0, Math.max(1, out.length)));
    case 'type-byte':
      if (out.length > 1) out[1] = rng.int(0, 256);
      return out;
    case 'version-byte':
      if (out.length > 0) out[0] = rng.pick([0, 2, 3, 0x7f, 0xff]);
      return out;
    case 'length-field': {
      // Mesh records: the u16 length of the first record says more, less, or nothing like the truth.
      if (out.length >= 3)
        out.writeUInt16BE(rng.pick([0, 1, out.length, out.length + 1, 0xffff, rng.int(0, 0x10000)]), 1);
      return out;
    }
    case 'oversize':
      return Buffer.concat([
        out,
        randomBytes(rng, MAX_RELAY_MESSAGE + 1 - Math.min(out.length, MAX_RELAY_MESSAGE) + rng.int(0, 2048)),
      ]);
    case 'garbage-body': {
      const keep = Math.min(out.length, 2);
      return Buffer.concat([out.subarray(0, keep), randomBytes(rng, rng.int(0, 300))]);
    }
    case 'duplicate':
    case 'valid':
      return out;
  }
}
