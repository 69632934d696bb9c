import { describe, expect, it } from 'vitest';
import { loadInRotation } from '../../src/k8s/rotation.js';

const sibling = (podName: string, ready: boolean) => ({ podName, address: `${podName}:7000`, ready });

describe('loadInRotation', () => {
  it('leaves out instances of pods the Service lists as not ready, keeps zeros and unlisted pods', () => {
    const load = loadInRotation(
      [
        { instance: 'i1', podName: 'relay-0', peers: 900 },
        { instance: 'i2', podName: 'relay-1', peers: 0 },
        { instance: 'i3', podName: 'relay-2', peers: 40 },
        { instance: 'i4', podName: 'relay-2', peers: 2 },
        { instance: 'i5', podName: 'self', peers: 7 },
      ],
      [sibling('relay-0', true), sibling('relay-1', true), sibling('relay-2', false)],
    );
    expect([...load]).toEqual([
      ['i1', 900],
      ['i2', 0],
      ['i5', 7],
    ]);
  });
});
