import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {execa, type ResultPromise} from 'execa';
import {Redis} from 'ioredis';
import {freePort} from '../../benchmarks/free-port.js';

export {freePort};

export interface RedisProcess {
  port: number;
  address: string;
  dir: string;
  /** Stops the server (SIGKILL when `hard`, to simulate a crash); safe twice. */
  stop(hard?: boolean): Promise<void>;
  /** Starts it again on the same port and dir. */
  restart(): Promise<void>;
}

async function waitForPing(port: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const client = new Redis({
      port,
      host: '127.0.0.1',
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
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
  let child: ResultPromise | undefined;
  const launch = async () => {
    child = execa(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...extraArgs],
      {
        stdio: 'ignore',
        reject: false,
        forceKillAfterDelay: false,
      },
    );
    await waitForPing(port);
  };
  const kill = async (signal: NodeJS.Signals) => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null) return;
    running.kill(signal);
    await running;
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
