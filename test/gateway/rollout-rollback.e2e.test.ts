/**
 * The automatic rollback end to end: `tacos serve gateway --workers 2` whose reservation gRPC road
 * is slow (a mock started with 2 s latency; its HTTP road is another, healthy mock). The gRPC p99
 * passes ROLLOUT_MIN_P99, one worker rolls the road back, every worker stops taking it (one started
 * after too), and a reset gives it back.
 */
import {request} from 'node:http';
import {mkdtemp, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import type {RunningMock} from '../../src/services/mocks/mock-server.js';
import {startCli, type LongRunningCli} from '../helpers/cli.js';
import {disposeRedis, startRedis, type RedisProcess} from '../helpers/redis.js';
import {bearer, bounded, callsSince, mockCalls, startTestMock} from '../helpers/stack.js';
import {alive, cleanEnv, descendants, freePorts, until} from '../helpers/up-project.js';

const AVAILABILITY = '/api/v1/events/evt_2026_concert/availability';

let redis: RedisProcess | undefined;
let slow: RunningMock | undefined;
let healthy: RunningMock | undefined;
let cli: LongRunningCli | undefined;
let project: string | undefined;
let http: string;
let auth: string;

/** A request on a connection of its own (the cluster hands each connection to a worker). */
function call(method: string, pathname: string, headers: Record<string, string> = {}, timeoutMs = 10_000) {
  return new Promise<{status: number; json: Record<string, any>}>((resolve, reject) => {
    const req = request(`${http}${pathname}`, {method, agent: false, headers, timeout: timeoutMs}, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({status: res.statusCode ?? 0, json: text ? JSON.parse(text) : {}}));
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${pathname}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  redis = await startRedis();
  slow = await startTestMock('reservation', {latencyMs: 2000});
  healthy = await startTestMock('reservation');
  const payment = healthy;
  auth = await bearer('rollback-tester');
  project = await mkdtemp(path.join(tmpdir(), 'tacos-rollback-'));
  const [httpPort, grpcPort] = await freePorts(2);
  const env: Record<string, string> = {
    SERVER_PORT: String(httpPort),
    GRPC_PORT: String(grpcPort),
    REDIS_ADDRESS: redis.address,
    GRPC_ENABLED: 'true',
    GRPC_TRAFFIC_PERCENT: '100',
    BACKEND_RESERVATION_GRPC_ADDRESS: `127.0.0.1:${slow.grpcPort}`,
    BACKEND_RESERVATION_API_BASE_URL: `http://127.0.0.1:${healthy.httpPort}`,
    // Slow answers, not timeouts: the road is judged on its p99.
    BACKEND_RESERVATION_API_TIMEOUT: '5s',
    BACKEND_PAYMENT_GRPC_ADDRESS: `127.0.0.1:${payment.grpcPort}`,
    BACKEND_PAYMENT_API_BASE_URL: `http://127.0.0.1:${payment.httpPort}`,
    // 11 calls over 2 workers: one worker has enough to judge, both cannot, so the other learns it from the first.
    ROLLOUT_MIN_CALLS: '6',
    LOG_LEVEL: 'info',
  };
  await writeFile(
    path.join(project, '.env.local'),
    Object.entries(env)
      .map(([key, value]) => `${key}=${value}\n`)
      .join(''),
  );
  cli = startCli(['serve', 'gateway', '--workers', '2'], {cwd: project, env: cleanEnv()});
  await cli.waitForLine((line) => line.msg === 'gateway workers listening', 30_000);
  http = `http://127.0.0.1:${httpPort}`;
}, 60_000);

afterAll(async () => {
  if (cli?.child.pid) {
    const workers = descendants(cli.child.pid);
    cli.child.kill('SIGTERM');
    await Promise.race([cli.exited, new Promise((resolve) => setTimeout(resolve, 20_000))]);
    for (const pid of alive(workers)) process.kill(pid, 'SIGKILL');
    cli.kill();
  }
  await Promise.allSettled([slow?.close(), healthy?.close()]);
  await disposeRedis(redis);
  if (project) await rm(project, {recursive: true, force: true});
}, 40_000);

describe('the automatic rollback of a slow gRPC road, in a cluster', () => {
  it('rolls the road back on every worker, a replacement too, then a reset gives it back', async () => {
    const statuses = await bounded(11, 11, async () => (await call('GET', AVAILABILITY, {authorization: auth})).status);
    expect(statuses.every((status) => status === 200)).toBe(true);
    const rolledBack = await until(
      'the rollback in GET /api/v1/rollout',
      async () => {
        const status = (await call('GET', '/api/v1/rollout')).json;
        return status.backends.reservation.rolled_back ? status : undefined;
      },
      10_000,
    );
    expect(rolledBack.backends.reservation).toMatchObject({
      configured_percent: 100,
      effective_percent: 0,
      rolled_back: {failed: 'p99'},
    });
    expect(rolledBack.backends.payment.rolled_back).toBeNull();
    expect(cli!.lines.filter((line) => line.msg === 'grpc road rolled back')).toHaveLength(1);

    // Every worker takes HTTP now: none of these calls reaches the slow gRPC road.
    const before = await mockCalls(slow!);
    const after = await bounded(20, 5, async () => (await call('GET', AVAILABILITY, {authorization: auth})).status);
    expect(after.every((status) => status === 200)).toBe(true);
    expect(callsSince(before, await mockCalls(slow!)).grpc).toBe(0);

    // A worker that replaces a dead one takes the rollback in force.
    const [killed] = rolledBack.workers as number[];
    process.kill(killed, 'SIGKILL');
    const replaced = await until(
      'a replacement worker in GET /api/v1/rollout',
      async () => {
        // A connection the primary handed to the worker as it died is lost: asked again.
        const status = (await call('GET', '/api/v1/rollout', {}, 2000).catch(() => undefined))?.json;
        return status?.workers.length === 2 && !status.workers.includes(killed) ? status : undefined;
      },
      15_000,
    );
    expect(replaced.backends.reservation.effective_percent).toBe(0);
    const beforeReplacement = await mockCalls(slow!);
    const afterReplacement = await bounded(
      20,
      5,
      async () => (await call('GET', AVAILABILITY, {authorization: auth})).status,
    );
    expect(afterReplacement.every((status) => status === 200)).toBe(true);
    expect(callsSince(beforeReplacement, await mockCalls(slow!)).grpc).toBe(0);

    const reset = await call('POST', '/api/v1/rollout/reset', {authorization: 'Bearer tacos-dev-token'});
    expect(reset.status).toBe(200);
    expect(reset.json.backends.reservation).toMatchObject({effective_percent: 100, rolled_back: null});
  }, 40_000);
});
