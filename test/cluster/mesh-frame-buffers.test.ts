import { describe, expect, it } from 'vitest';
import { MeshFrameBuffers } from '../../src/cluster/mesh-frame-buffers.js';
import { MeshRecordType } from '../../src/cluster/mesh-frame.js';
import { WS_MAX_HEADER_SIZE } from '../../src/net/ws-frame.js';

const id = (c: string): Buffer => Buffer.from(c.repeat(36), 'latin1');

describe('MeshFrameBuffers', () => {
  it('copies records into one open frame that holds them as transport records, then starts over', () => {
    const frames = new MeshFrameBuffers(1024, 2);
    expect(frames.hasOpen).toBe(false);
    expect(frames.append(id('a'), Buffer.from('one'))).toBe(true);
    expect(frames.append(id('b'), Buffer.from('second'))).toBe(false);
    expect([frames.openMessages, frames.openBytes]).toEqual([2, 9]);
    const end = frames.openEnd;
    const frame = frames.detachOpen();
    expect([frames.hasOpen, frames.openMessages, frames.openBytes]).toEqual([false, 0, 0]);
    const record = (peer: string, message: string): Buffer =>
      Buffer.concat([
        Buffer.from([MeshRecordType.Transport, 0, 36 + message.length]),
        id(peer),
        Buffer.from(message),
      ]);
    expect(frame.subarray(WS_MAX_HEADER_SIZE, end)).toEqual(
      Buffer.concat([record('a', 'one'), record('b', 'second')]),
    );
  });

  it('says whether a record fits the open frame within the frame size', () => {
    const frames = new MeshFrameBuffers(1024, 2);
    expect(frames.fitsOpen(10_000, 100)).toBe(true); // nothing open: a frame takes any record
    frames.append(id('a'), Buffer.alloc(50)); // 3 + 36 + 50 = 89 bytes
    expect(frames.fitsOpen(11, 100)).toBe(true);
    expect(frames.fitsOpen(12, 100)).toBe(false);
  });

  it('reuses released buffers and keeps at most poolLimit + 1 of them', () => {
    const frames = new MeshFrameBuffers(64, 1);
    const [a, b, c] = [frames.acquire(), frames.acquire(), frames.acquire()];
    frames.release(a);
    frames.release(b);
    frames.release(c); // over the limit: dropped
    expect([frames.acquire(), frames.acquire()]).toEqual([b, a]);
    expect(frames.acquire()).not.toBe(c);
  });
});
