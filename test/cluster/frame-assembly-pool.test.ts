import { describe, expect, it } from 'vitest';
import { FrameAssemblyPool } from '../../src/cluster/frame-assembly-pool.js';

/** A pool whose "writes are out" hook is turned by hand: settle() answers what was registered. */
function poolOf(
  bufferSize: number,
  maxIdle: number,
): { pool: FrameAssemblyPool; settle: (allWritten: boolean) => void } {
  const waiting: ((allWritten: boolean) => void)[] = [];
  const pool = new FrameAssemblyPool({ bufferSize, maxIdle, whenWritten: (cb) => waiting.push(cb) });
  return {
    pool,
    settle: (allWritten) => {
      for (const cb of waiting.splice(0)) cb(allWritten);
    },
  };
}

describe('FrameAssemblyPool', () => {
  it('reuses a frame’s memory only after the writes of its turn all went out', () => {
    const { pool, settle } = poolOf(1024, 4);
    const first = pool.take(700);
    expect(first.length).toBe(700);
    pool.release(first);
    // Before the flush a session's write may still point into it.
    expect(pool.take(700).buffer).not.toBe(first.buffer);
    settle(true);
    expect(pool.idle).toBe(1);
    const second = pool.take(300);
    expect(second.buffer).toBe(first.buffer);
    expect(second.length).toBe(300);
    expect(pool.idle).toBe(0);
  });

  it('leaves memory to the garbage collector when a socket still holds unsent bytes', () => {
    const { pool, settle } = poolOf(1024, 4);
    const frame = pool.take(1024);
    pool.release(frame);
    settle(false);
    expect(pool.idle).toBe(0);
    expect(pool.take(10).buffer).not.toBe(frame.buffer);
  });

  it('gives frames over its size a buffer of their own and ignores memory it did not lend', () => {
    const { pool, settle } = poolOf(1024, 4);
    const large = pool.take(1025);
    expect(large.length).toBe(1025);
    pool.release(large);
    pool.release(Buffer.alloc(1024));
    settle(true);
    expect(pool.idle).toBe(0);
  });

  it('keeps at most maxIdle buffers, and one release of a buffer never makes two lenders', () => {
    const { pool, settle } = poolOf(64, 2);
    const frames = [pool.take(64), pool.take(64), pool.take(64)];
    for (const f of frames) pool.release(f);
    pool.release(frames[0]!);
    settle(true);
    expect(pool.idle).toBe(2);
    const again = [pool.take(64), pool.take(64)];
    expect(again[0]!.buffer).not.toBe(again[1]!.buffer);
  });
});
