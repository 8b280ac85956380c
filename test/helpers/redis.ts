import {spawn, type ChildProcess} from 'node:child_process';
import {mkdtemp, rm} from 'node:fs/promises';
import {createServer} from 'node:net';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {Redis} from 'ioredis';

/**
 * A free TCP port on 127.0.0.1 for a server a test starts later (a redis-server, a stack's env
 * file). It is taken below the kernel's ephemeral range (32768+), from which servers listening on
 * port 0 and outgoing connections get theirs, so those can never take it in the meantime.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (await canBind(port)) return port;
  }
  throw new Error('no free port between 20000 and 32000 after 200 tries');
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

export interface RedisProcess {
  port: number;
  address: string;
  dir: string;
  /** Stops the server (SIGKILL when `hard`, to simulate a crash); safe twice. */
  stop(hard?: boolean): Promise<void>;
  /** Starts it again on the same port and dir. */
  restart(): Promise<void>;
}

async function waitForPing(port: number, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const client = new Redis({port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null});
    client.on('error', () => undefined); // refused while the server starts: expected, retried below
    try {
      await client.connect();
      await client.ping();
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    } finally {
      client.disconnect();
    }
  }
  throw new Error(`redis-server on port ${port} did not answer PING within ${timeoutMs} ms`);
}

/** A real redis-server on a free port with its own dir, for one test file. */
export async function startRedis(extraArgs: string[] = []): Promise<RedisProcess> {
  const dir = await mkdtemp(path.join(tmpdir(), 'tacos-redis-'));
  const port = await freePort();
  let child: ChildProcess | undefined;
  const launch = async () => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...extraArgs], {
      stdio: 'ignore',
    });
    await waitForPing(port);
  };
  const kill = async (signal: NodeJS.Signals) => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      running.once('exit', () => resolve());
      running.kill(signal);
    });
  };
  await launch();
  return {
    port,
    address: `127.0.0.1:${port}`,
    dir,
    stop: async (hard = false) => {
      await kill(hard ? 'SIGKILL' : 'SIGTERM');
    },
    restart: launch,
  };
}

/** Stops a Redis and removes its dir. */
export async function disposeRedis(redis: RedisProcess | undefined): Promise<void> {
  if (!redis) return;
  await redis.stop();
  await rm(redis.dir, {recursive: true, force: true});
}
