import { describe, expect, it } from 'vitest';
import { KeyedSerializer } from '../../src/relay/keyed-serializer.js';

/** A task that finishes when the test says so, recording when it started and ended. */
function gate(log: string[], name: string): { task: () => Promise<string>; open: () => void } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return {
    task: async () => {
      log.push(`start ${name}`);
      await opened;
      log.push(`end ${name}`);
      return name;
    },
    open: () => open(),
  };
}

describe('KeyedSerializer', () => {
  it('runs tasks of one key one after another, in call order, even when the first finishes last', async () => {
    const serializer = new KeyedSerializer<string>();
    const log: string[] = [];
    const first = gate(log, 'a1');
    const second = gate(log, 'a2');
    const r1 = serializer.run('a', first.task);
    const r2 = serializer.run('a', second.task);
    second.open();
    await Promise.resolve();
    await Promise.resolve();
    expect(log).toEqual(['start a1']);
    first.open();
    expect(await r1).toBe('a1');
    expect(await r2).toBe('a2');
    expect(log).toEqual(['start a1', 'end a1', 'start a2', 'end a2']);
  });

  it('runs tasks of different keys side by side', async () => {
    const serializer = new KeyedSerializer<string>();
    const log: string[] = [];
    const a = gate(log, 'a');
    const b = gate(log, 'b');
    const ra = serializer.run('a', a.task);
    const rb = serializer.run('b', b.task);
    await expect.poll(() => log).toEqual(['start a', 'start b']);
    b.open();
    expect(await rb).toBe('b');
    a.open();
    expect(await ra).toBe('a');
  });

  it('a failed task rejects its own caller only; the next one of the key still runs', async () => {
    const serializer = new KeyedSerializer<string>();
    const failed = serializer.run('a', async () => Promise.reject(new Error('boom')));
    const next = serializer.run('a', async () => 'next');
    await expect(failed).rejects.toThrow('boom');
    expect(await next).toBe('next');
  });

  it('idle() resolves only after every queued task finished', async () => {
    const serializer = new KeyedSerializer<number>();
    const log: string[] = [];
    const slow = gate(log, 'slow');
    void serializer.run(1, slow.task);
    let idle = false;
    const waiting = serializer.idle().then(() => (idle = true));
    await Promise.resolve();
    expect(idle).toBe(false);
    slow.open();
    await waiting;
    expect(log).toEqual(['start slow', 'end slow']);
  });
});
