export { startProbe } from './prober.js';
export type { ProbeOptions, RunningProbe, ProbeEvents } from './prober.js';
export { runProbeCommand, parseProbeArgs, PROBE_USAGE } from './probe-command.js';
export type { ProbeCommandSettings } from './probe-command.js';
