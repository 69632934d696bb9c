import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ClusterMetrics } from '../../src/cluster/cluster-metrics.js';

function forwardDrops(text: string): Record<string, number> {
  const series: Record<string, number> = {};
  for (const [, reason, value] of text.matchAll(
    /^relay_mesh_forward_drops_total\{reason="([^"]+)"\} (\S+)$/gm,
  ))
    series[reason!] = Number(value);
  return series;
}

describe('relay_mesh_forward_drops_total', () => {
  it('shows every drop reason at 0 before any drop, then counts drops on top', async () => {
    const registry = new Registry();
    const metrics = new ClusterMetrics(registry);
    expect(forwardDrops(await registry.metrics())).toEqual({
      link_closed: 0,
      flow_over_share: 0,
      instance_gone: 0,
      unknown_instance: 0,
    });
    metrics.countForwardDrops('flow_over_share', 3);
    metrics.countForwardDrops('link_closed');
    expect(forwardDrops(await registry.metrics())).toEqual({
      link_closed: 1,
      flow_over_share: 3,
      instance_gone: 0,
      unknown_instance: 0,
    });
  });
});

describe('mesh traffic counters', () => {
  it('show both directions at 0 before any traffic, then the totals counted', async () => {
    const registry = new Registry();
    const metrics = new ClusterMetrics(registry);
    const series = async (): Promise<string[]> =>
      (await registry.metrics())
        .split('\n')
        .filter((line) => /^relay_mesh_(forwarded_messages|forwarded_bytes|frames)_total\{/.test(line))
        .sort();
    expect(await series()).toEqual([
      'relay_mesh_forwarded_bytes_total{direction="in"} 0',
      'relay_mesh_forwarded_bytes_total{direction="out"} 0',
      'relay_mesh_forwarded_messages_total{direction="in"} 0',
      'relay_mesh_forwarded_messages_total{direction="out"} 0',
      'relay_mesh_frames_total{direction="in"} 0',
      'relay_mesh_frames_total{direction="out"} 0',
    ]);
    metrics.traffic.messagesOut += 3;
    metrics.traffic.bytesOut += 4200;
    metrics.traffic.framesOut += 1;
    expect(await series()).toEqual([
      'relay_mesh_forwarded_bytes_total{direction="in"} 0',
      'relay_mesh_forwarded_bytes_total{direction="out"} 4200',
      'relay_mesh_forwarded_messages_total{direction="in"} 0',
      'relay_mesh_forwarded_messages_total{direction="out"} 3',
      'relay_mesh_frames_total{direction="in"} 0',
      'relay_mesh_frames_total{direction="out"} 1',
    ]);
  });
});
