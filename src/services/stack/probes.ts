import {credentials, type ServiceDefinition} from '@grpc/grpc-js';
import {makeGenericClientConstructor} from '@grpc/grpc-js';
import {Redis} from 'ioredis';
import {packageDefinition} from '../server-kit/grpc/server.js';
import {tcpOpen} from '../net.js';
import {parseHostPort} from '../redis/client.js';
import type {ReadyCheck} from './stack-file.js';

/** Redis answers PING (with AUTH when a password is set). */
export async function redisAnswers(host: string, port: number, password?: string, timeoutMs = 500): Promise<boolean> {
  const client = new Redis({
    host,
    port,
    password,
    lazyConnect: true,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

/** GET url answers 200 within the timeout. */
export async function httpOk(url: string, timeoutMs = 500): Promise<boolean> {
  try {
    // No keep-alive: a probe must not leave a socket that keeps the prober running.
    const response = await fetch(url, {signal: AbortSignal.timeout(timeoutMs), headers: {connection: 'close'}});
    await response.arrayBuffer();
    return response.status === 200;
  } catch {
    return false;
  }
}

/** grpc.health.v1.Health/Check says SERVING for the service ('' is the whole server). */
export async function grpcServing(address: string, service = '', timeoutMs = 500): Promise<boolean> {
  const Health = makeGenericClientConstructor(
    packageDefinition()['grpc.health.v1.Health'] as ServiceDefinition,
    'grpc.health.v1.Health',
  );
  // A channel of its own, closed with the client (the shared pool keeps connections for a while).
  const client = new Health(address, credentials.createInsecure(), {'grpc.use_local_subchannel_pool': 1});
  try {
    return await new Promise<boolean>((resolve) => {
      client.Check({service}, {deadline: Date.now() + timeoutMs}, (error: Error | null, response?: {status: string}) =>
        resolve(!error && response?.status === 'SERVING'),
      );
    });
  } finally {
    client.close();
  }
}

/** Polls `probe` until it says yes, or rejects after timeoutMs. */
export async function waitUntil(
  probe: () => Promise<boolean>,
  timeoutMs: number,
  signal?: AbortSignal,
  intervalMs = 50,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !signal?.aborted) {
    if (await probe()) return true;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  return false;
}

/** The probe of a stack file's check. A log check is no probe: the supervisor reads the output; once running, it holds. */
export function readyProbe(check: ReadyCheck, timeoutMs = 500): () => Promise<boolean> {
  if ('http' in check) return () => httpOk(check.http, timeoutMs);
  if ('grpc' in check) return () => grpcServing(check.grpc, '', timeoutMs);
  if ('tcp' in check) {
    const {host, port} = parseHostPort(check.tcp);
    return () => tcpOpen(host, port, timeoutMs);
  }
  return async () => true;
}
