import {createServer} from 'node:net';

/**
 * A free TCP port on 127.0.0.1 for a server a test or a benchmark starts later (a redis-server, a
 * stack's env file). It is taken below the kernel's ephemeral range (32768+), from which servers listening on
 * port 0 and outgoing connections get theirs, so those can never take it in the meantime.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (await canBind(port)) return port;
  }
  throw new Error('no free port between 20000 and 32000 after 200 tries');
}

/** `count` different free ports. */
export async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}
