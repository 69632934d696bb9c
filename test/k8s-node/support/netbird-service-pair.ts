import { parsePrintedPeerId, type PeerKey } from '../../../src/protocol/peer-id.js';
import { runDriver, type DriverEvent, type DriverReply, type ScenarioResult } from '../../interop/harness.js';

export interface ServicePairRun {
  /** The driver's result: pass only if every client connected and the pair lost nothing. */
  result: ScenarioResult;
  /** The pod each client landed on, in connection order ('' where it did not connect). */
  pods: string[];
  /** The driver's report of the exchange between the first two clients on different pods. */
  paired: DriverEvent | undefined;
}

export interface ServicePairOptions {
  /** The one URL every client dials (the Service). */
  url: string;
  secret: string;
  /** What each client must hear as the relay's instance URL. */
  instanceUrl: string;
  /** Where a connected peer's session is; '' while it is not known yet. */
  podOf: (peer: PeerKey) => Promise<string>;
  maxClients: number;
  timeoutMs: number;
}

/**
 * NetBird's own Go relay client (test/interop's driver, scenario service-pair) behind a Service that
 * picks the pod: connects clients one at a time until two sit on different pods, then has those two
 * exchange every packet size both ways.
 */
export async function netbirdPairAcrossPods(options: ServicePairOptions): Promise<ServicePairRun> {
  const pods: string[] = [];
  let paired: DriverEvent | undefined;
  const onEvent = async (event: DriverEvent, reply: DriverReply): Promise<void> => {
    if (event.event === 'ready') return reply('more');
    if (event.event === 'paired') {
      paired = event;
      return reply('done');
    }
    if (event.event !== 'connected' || typeof event.error === 'string') return reply('done');
    const peer = parsePrintedPeerId(String(event.peerId));
    if (!peer) throw new Error(`driver reported a peer ID that is not one: ${String(event.peerId)}`);
    const pod = await settled(() => options.podOf(peer), 10_000);
    pods.push(pod);
    const elsewhere = pods.findIndex((other) => other !== '' && other !== pod);
    if (elsewhere >= 0) return reply(`pair ${elsewhere} ${pods.length - 1}`);
    reply(pods.length < options.maxClients ? 'more' : 'done');
  };
  const result = await runDriver(
    'k8s-node-service-pair',
    [
      '-urls',
      options.url,
      '-secret',
      options.secret,
      '-instance-url',
      options.instanceUrl,
      '-scenario',
      'service-pair',
    ],
    options.timeoutMs,
    onEvent,
  );
  return { result, pods, paired };
}

/** Polls `read` until it gives a non-empty answer (the relay registers a session just after auth). */
async function settled(read: () => Promise<string>, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (value !== '') return value;
    if (Date.now() > deadline) throw new Error(`peer has no route in Redis after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
