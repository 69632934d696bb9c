/**
 * Redis Cluster's key-to-slot mapping (CRC16/XMODEM of the hash tag, modulo 16,384), and for each
 * slot a short tag of its own. A script may only touch keys of one slot, so a key shared by every
 * peer of a slot (the token floor) is named with the tag of that slot.
 */
export const HASH_SLOTS = 16_384;

const CRC_TABLE = (() => {
  const table = new Uint16Array(256);
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte << 8;
    for (let bit = 0; bit < 8; bit++)
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[byte] = crc;
  }
  return table;
})();

export function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ CRC_TABLE[((crc >> 8) ^ byte) & 0xff]!;
  return crc;
}

/** CRC16 of the UTF-8 bytes of `text`, without encoding it first when it is ASCII (peer IDs are). */
function crc16OfText(text: string): number {
  let crc = 0;
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (code > 0x7f) return crc16(Buffer.from(text, 'utf8'));
    crc = ((crc << 8) & 0xffff) ^ CRC_TABLE[((crc >> 8) ^ code) & 0xff]!;
  }
  return crc;
}

/** The slot Redis Cluster puts `key` in: only the part inside the first non-empty {…} counts. */
export function hashSlot(key: string): number {
  const open = key.indexOf('{');
  if (open !== -1) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) key = key.slice(open + 1, close);
  }
  return crc16OfText(key) % HASH_SLOTS;
}

let slotTags: string[] | undefined;

/**
 * The smallest decimal number whose slot is `slot`, as text. Every pod computes the same table,
 * so all of them name the same key for a slot (about 170,000 CRCs, once per process).
 */
export function slotTag(slot: number): string {
  if (slotTags === undefined) {
    const tags = new Array<string>(HASH_SLOTS);
    let missing = HASH_SLOTS;
    for (let candidate = 0; missing > 0; candidate++) {
      const text = String(candidate);
      const ofText = hashSlot(text);
      if (tags[ofText] === undefined) {
        tags[ofText] = text;
        missing--;
      }
    }
    slotTags = tags;
  }
  return slotTags[slot]!;
}
