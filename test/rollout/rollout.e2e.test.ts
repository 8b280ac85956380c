/**
 * `tacos env switch` and `tacos rollout` against a real gateway (`tacos serve gateway` over an env
 * file in a temp dir), real mocks and a real Redis. These need the gateway's /api/v1/rollout route
 * and its live reload (#17, the gateway side).
 */
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import type {RunningMock} from '../../src/services/mocks/mock-server.js';
import {identify, writeState} from '../../src/services/stack/state.js';
import {runCli, startCli, type LongRunningCli} from '../helpers/cli.js';
import {disposeRedis, startRedis, type RedisProcess} from '../helpers/redis.js';
import {admit, backendEnv, bearer, send, startTestMock} from '../helpers/stack.js';

const ENV_FILE = 'GRPC_ENABLED=true\nGRPC_TRAFFIC_PERCENT=0\n';
const CONCERT = 'evt_2026_concert';

let redis: RedisProcess;
let reservation: RunningMock;
let payment: RunningMock;
const running: LongRunningCli[] = [];

beforeAll(async () => {
  redis = await startRedis();
  reservation = await startTestMock('reservation');
  payment = await startTestMock('payment');
});

afterAll(async () => {
  for (const cli of running) cli.kill();
  await reservation?.close();
  await payment?.close();
  await disposeRedis(redis);
});

/** A project dir with .env.staging, its gateway served from it, and a stack state naming that gateway. */
async function stagingStack(processEnv: Record<string, string> = {}) {
  const dir = await mkdtemp(path.join(tmpdir(), 'tacos-rollout-e2e-'));
  await writeFile(path.join(dir, '.env.staging'), ENV_FILE);
  const gateway = startCli(['serve', 'gateway', '--env', 'staging'], {
    cwd: dir,
    env: {
      ...backendEnv(reservation, payment, redis.address),
      SERVER_PORT: '0',
      GRPC_PORT: '0',
      LOG_LEVEL: 'info',
      ...processEnv,
    },
  });
  running.push(gateway);
  const ready = await gateway.waitForLine((line) => line.msg === 'gateway listening', 20_000);
  const http = ready.http as string;
  // The state `tacos up` would write: this test process supervises, the gateway is its service.
  await writeState(path.join(dir, '.tacos'), {
    supervisor: await identify(process.pid),
    env: 'staging',
    startedAt: new Date().toISOString(),
    detached: false,
    services: [{name: 'gateway', state: 'ready', urls: [http], ports: [], restarts: 0}],
  });
  return {
    dir,
    http,
    pid: gateway.child.pid,
    async stop() {
      gateway.child.kill('SIGTERM');
      await gateway.exited;
      await rm(dir, {recursive: true, force: true});
    },
  };
}

/**
 * Booking calls through the gateway until stopped (bounded: at most 2000 rounds), so each backend
 * sees calls on the roads the share picks.
 */
function steadyTraffic(http: string) {
  let stopped = false;
  const done = (async () => {
    for (let round = 0; round < 2000 && !stopped; round++) {
      const user = `rollout-${round}`;
      const auth = await bearer(user);
      await send(http, 'GET', `/api/v1/events/${CONCERT}/availability`, {auth});
      const token = await admit(http, CONCERT, user);
      const created = await send(http, 'POST', '/api/v1/reservations', {
        auth,
        body: {event_id: CONCERT, quantity: 1, reservation_token: token},
      });
      if (created.status === 201)
        await send(http, 'POST', '/api/v1/payment/intent', {
          auth,
          body: {reservation_id: created.json.reservation_id, amount: created.json.total_amount},
        });
    }
  })();
  return {
    async stop() {
      stopped = true;
      await done;
    },
  };
}

describe('tacos env switch reports what the running gateway took', () => {
  it('took it: the new share, by the gateway of the stack, within the wait', async () => {
    const stack = await stagingStack();
    try {
      const result = await runCli(['env', 'switch', 'grpc', '--env', 'staging', '--percent', '100'], {cwd: stack.dir});
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toMatch(
        new RegExp(
          `\\.env\\.staging: the running gateway \\(pid ${stack.pid}\\) took GRPC_TRAFFIC_PERCENT=100 in \\d+\\.\\d s`,
        ),
      );
      const status = await send(stack.http, 'GET', '/api/v1/rollout');
      expect(status.json.settings).toMatchObject({grpc_enabled: true, grpc_traffic_percent: 100});
    } finally {
      await stack.stop();
    }
  });

  it('fixed by the process environment: a warning (exit 0), or exit 1 with --wait-applied', async () => {
    const stack = await stagingStack({GRPC_TRAFFIC_PERCENT: '0'});
    try {
      const warned = await runCli(['env', 'switch', 'grpc', '--env', 'staging', '--percent', '50'], {cwd: stack.dir});
      expect(warned.code, warned.stderr).toBe(0);
      // oclif wraps a warning to the terminal's width behind ` ›`: read it as one line.
      const warning = warned.stderr.replace(/\s*›\s*/g, ' ').replace(/\s+/g, ' ');
      expect(warning).toMatch(/did not take GRPC_TRAFFIC_PERCENT=50 \(fixed_by_process_env\)/);
      expect(warning).toMatch(/restart the gateway without it/);
      expect(await readFile(path.join(stack.dir, '.env.staging'), 'utf8')).toContain('GRPC_TRAFFIC_PERCENT=50');

      const strict = await runCli(['env', 'switch', 'grpc', '--env', 'staging', '--percent', '60', '--wait-applied'], {
        cwd: stack.dir,
      });
      expect(strict.code).toBe(1);
      expect(strict.stderr).toMatch(/fixed_by_process_env/);
    } finally {
      await stack.stop();
    }
  });
});

describe('tacos rollout', () => {
  it('reaches 100 % with healthy mocks under steady traffic, then status shows it', async () => {
    const stack = await stagingStack();
    const traffic = steadyTraffic(stack.http);
    try {
      const result = await runCli(
        ['rollout', 'grpc', '--env', 'staging', '--steps', '50,100', '--interval', '2s', '--min-calls', '3', '--json'],
        {cwd: stack.dir, timeoutMs: 40_000},
      );
      expect(result.code, result.stderr).toBe(0);
      const lines = result.stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as Record<string, any>);
      const ticks = lines.filter((line) => line.type === 'tick');
      expect(ticks.map((tick) => tick.percent)).toContain(50);
      expect(ticks.at(-1)).toMatchObject({percent: 100, verdict: {outcome: 'healthy'}});
      expect(ticks.at(-1)?.backends.reservation.grpc.calls).toBeGreaterThanOrEqual(3);
      expect(lines.at(-1)).toMatchObject({type: 'result', outcome: 'reached', percent: 100});
      expect(await readFile(path.join(stack.dir, '.env.staging'), 'utf8')).toBe(
        'GRPC_ENABLED=true\nGRPC_TRAFFIC_PERCENT=100\n',
      );
    } finally {
      await traffic.stop();
    }
    try {
      const status = await runCli(['rollout', 'status', '--env', 'staging', '--json'], {cwd: stack.dir});
      expect(status.code, status.stderr).toBe(0);
      const body = JSON.parse(status.stdout) as Record<string, any>;
      expect(body.pid).toBe(stack.pid);
      expect(body.settings).toMatchObject({env_file: '.env.staging', grpc_enabled: true, grpc_traffic_percent: 100});
      expect(body.backends.reservation).toMatchObject({
        configured_percent: 100,
        effective_percent: 100,
        rolled_back: null,
      });
      expect(body.backends.reservation.window.grpc.calls).toBeGreaterThan(0);

      const text = await runCli(['rollout', 'status', '--env', 'staging'], {cwd: stack.dir});
      expect(text.code).toBe(0);
      expect(text.stdout).toMatch(/GRPC_ENABLED=true GRPC_TRAFFIC_PERCENT=100/);
      expect(text.stdout).toMatch(/^reservation\s+100%\s+100%\s+grpc/m);
    } finally {
      await stack.stop();
    }
  });
});
