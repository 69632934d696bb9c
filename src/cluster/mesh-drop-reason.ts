// Why a transport message for another instance was not forwarded: a metric
// label, so the set is closed (and listed at run time, so each reason's series
// exists at 0 from the first scrape instead of appearing with the first drop).
export const MESH_FORWARD_DROP_REASONS = [
  'link_closed',
  'flow_over_share',
  'instance_gone',
  'unknown_instance',
] as const;

export type MeshForwardDropReason = (typeof MESH_FORWARD_DROP_REASONS)[number];
