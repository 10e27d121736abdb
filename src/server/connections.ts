/**
 * At most `max` open connections per client address. One past it is answered at once, on the socket
 * itself and before any request is read (a slow client cannot make the refusal slow), and closed.
 */
import type { Server, Socket } from 'node:net';

/** How long a refused socket may stay open for its client to read the answer before it is destroyed. */
const REFUSED_LINGER_MS = 1000;

/**
 * Count connections per remote address on `server`; a connection past `max` gets `refusal()` and is
 * closed. Returns whether a socket was refused: node's HTTP parser still sees whatever it sends, and
 * the app must not serve it.
 */
export function limitConnectionsPerClient(server: Server, max: number, refusal: (address: string) => string): (socket: Socket) => boolean {
  const open = new Map<string, number>();
  const refused = new WeakSet<Socket>();
  // Before node's HTTP listener, so a refused socket is marked before it can parse a request.
  server.prependListener('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? '';
    const count = (open.get(address) ?? 0) + 1;
    open.set(address, count);
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left === 0) open.delete(address);
      else open.set(address, left);
    });
    if (count <= max) return;
    refused.add(socket);
    socket.end(refusal(address));
    setTimeout(() => socket.destroy(), REFUSED_LINGER_MS).unref();
  });
  return (socket) => refused.has(socket);
}
