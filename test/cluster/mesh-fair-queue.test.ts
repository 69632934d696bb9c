import { describe, expect, it } from 'vitest';
import { MeshFairQueue } from '../../src/cluster/mesh-fair-queue.js';
import { peerKeyToBytes } from '../../src/protocol/peer-id.js';
import { peer } from './cluster-test-kit.js';

const PER_RECORD = 39;

function drain(queue: MeshFairQueue, budget: number): { ids: string[]; messages: string[] } {
  const ids: Buffer[] = [];
  const messages: Buffer[] = [];
  const n = queue.take(budget, PER_RECORD, ids, messages);
  return {
    ids: ids.slice(0, n).map((id) => id.toString('latin1')),
    messages: messages.slice(0, n).map((m) => m.toString()),
  };
}

describe('mesh fair queue', () => {
  it('serves flows in turn, each in its own order', () => {
    const queue = new MeshFairQueue(100, 1 << 20, 50);
    const [p, q] = [peer('p'), peer('q')];
    for (let i = 0; i < 4; i++) queue.push(p, Buffer.from(`p${i}`));
    queue.push(q, Buffer.from('q0'));
    const taken = drain(queue, 1 << 20);
    // Quantum 50 bytes = one record of 41 per turn: p, q, then p's rest.
    expect(taken.messages).toEqual(['p0', 'q0', 'p1', 'p2', 'p3']);
    expect(taken.ids[1]).toBe(peerKeyToBytes(q).toString('latin1'));
    expect(queue.length).toBe(0);
    expect(queue.flows).toBe(0);
  });

  it('cuts a batch at the byte budget and resumes where it stopped', () => {
    const queue = new MeshFairQueue(100, 1 << 20, 1 << 20);
    const p = peer('p');
    for (let i = 0; i < 5; i++) queue.push(p, Buffer.alloc(100, i));
    expect(drain(queue, 3 * (100 + PER_RECORD)).messages).toHaveLength(3);
    expect(queue.length).toBe(2);
    expect(drain(queue, 1).messages).toHaveLength(1);
  });

  it('drops from the flow over its share, never from the others', () => {
    const queue = new MeshFairQueue(10, 1 << 20, 1 << 20);
    const [flood, quiet] = [peer('flood'), peer('quiet')];
    queue.push(quiet, Buffer.from('quiet0'));
    let dropped = 0;
    for (let i = 0; i < 50; i++) dropped += queue.push(flood, Buffer.from(`f${i}`));
    dropped += queue.push(quiet, Buffer.from('quiet1'));
    dropped += queue.push(quiet, Buffer.from('quiet2'));
    expect(queue.length).toBe(10);
    expect(dropped).toBe(43);
    const taken = drain(queue, 1 << 20).messages;
    expect(taken.filter((m) => m.startsWith('quiet'))).toEqual(['quiet0', 'quiet1', 'quiet2']);
    // The flood kept its newest messages.
    expect(taken.filter((m) => m.startsWith('f'))).toEqual(['f43', 'f44', 'f45', 'f46', 'f47', 'f48', 'f49']);
  });

  it('holds no more than its byte limit', () => {
    const queue = new MeshFairQueue(1_000, 10_000, 4_096);
    for (let i = 0; i < 200; i++) queue.push(peer(`p${i % 7}`), Buffer.alloc(1_000));
    expect(queue.bytes).toBeLessThanOrEqual(10_000);
    expect(queue.clear()).toBe(10);
    expect(queue.bytes).toBe(0);
  });
});
