// A TCP proxy (to PostgreSQL, say) that can turn into a black hole: existing
// connections are dropped and new ones accepted but never answered, as through
// a network partition, until it is restored.
import { connect, createServer, type Socket } from 'node:net';

/** A proxy to 127.0.0.1:`port`. */
export async function blackHoleProxy(port: number) {
  let open = true;
  const sockets = new Set<Socket>();
  const swallowed = new Set<Socket>();
  const server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client)).on('error', () => {});
    if (!open) {
      swallowed.add(client);
      return;
    }
    const upstream = connect(port, '127.0.0.1');
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream)).on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    swallow() {
      open = false;
      for (const s of sockets) s.destroy();
    },
    /** Forwards again; the connections swallowed meanwhile are dropped, so their clients dial again at once. */
    restore() {
      open = true;
      for (const s of swallowed) s.destroy();
      swallowed.clear();
    },
    close: () => new Promise<void>((resolve) => (server.close(() => resolve()), [...sockets].forEach((s) => s.destroy()))),
  };
}

