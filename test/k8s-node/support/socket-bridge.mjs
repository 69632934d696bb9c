// Copies bytes between a listener and a target, each a TCP address or a Unix socket:
//   node socket-bridge.mjs tcp:10.250.0.1:6443 unix:/tmp/x/api.sock
//   node socket-bridge.mjs unix:/tmp/x/svc.sock tcp:10.96.0.10:443
// A Unix socket is a file, so it crosses network namespaces: one bridge on each side joins a
// port in the node's namespace to a port on the host's loopback without a veth or a route.
// Prints "ready" once listening; exits on SIGTERM.
import { createConnection, createServer } from 'node:net';
import { rmSync } from 'node:fs';

function parse(spec) {
  if (spec.startsWith('unix:')) return { path: spec.slice(5) };
  const match = /^tcp:(.+):(\d+)$/.exec(spec);
  if (!match) throw new Error(`socket-bridge: bad address ${spec} (tcp:HOST:PORT or unix:PATH)`);
  return { host: match[1], port: Number(match[2]) };
}

const [listenSpec, targetSpec] = process.argv.slice(2);
const listenAt = parse(listenSpec ?? '');
const target = parse(targetSpec ?? '');
const sockets = new Set();

const server = createServer((inbound) => {
  const outbound = createConnection(target);
  sockets.add(inbound).add(outbound);
  const close = () => {
    inbound.destroy();
    outbound.destroy();
    sockets.delete(inbound);
    sockets.delete(outbound);
  };
  inbound.on('error', close).on('close', close);
  outbound.on('error', close).on('close', close);
  inbound.pipe(outbound);
  outbound.pipe(inbound);
});
if (listenAt.path) rmSync(listenAt.path, { force: true });
server.listen(listenAt, () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => {
  for (const socket of sockets) socket.destroy();
  server.close(() => process.exit(0));
});
