// The physical limit for any Node relay on this machine: a TCP splice that
// pairs accepted connection 2k with 2k+1 and pipes bytes both ways, with no
// framing, parsing or routing. Usage: node bench/servers/splice.mjs <port>
import { createServer } from 'node:net';

const port = Number(process.argv[2] ?? 0);
let waiting = null;
const server = createServer({ noDelay: true }, (socket) => {
  socket.on('error', () => {});
  if (waiting === null) {
    waiting = socket;
    return;
  }
  const a = waiting;
  waiting = null;
  a.pipe(socket);
  socket.pipe(a);
});
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
