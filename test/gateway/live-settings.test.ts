/**
 * `tacos serve gateway` (single and `--workers 2`) reloading its live settings: the real CLI in a
 * temp project whose .env.local the test edits (as `tacos env switch` does), a real redis-server,
 * all on 127.0.0.1. What an operator sees: GET /api/v1/rollout, the same processes serving, no
 * request failing meanwhile, SIGHUP, a refused file, a change that needs a restart.
 */
import {request} from 'node:http';
import {mkdtemp, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {runCli, startCli, type LongRunningCli} from '../helpers/cli.js';
import {disposeRedis, startRedis, type RedisProcess} from '../helpers/redis.js';
import {alive, cleanEnv, descendants, freePorts, until} from '../helpers/up-project.js';

type Status = Record<string, any>;

let redis: RedisProcess;
const projects: string[] = [];
const running: LongRunningCli[] = [];
const pidsSeen = new Set<number>();

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  for (const cli of running) for (const pid of cli.child.pid ? descendants(cli.child.pid) : []) pidsSeen.add(pid);
  for (const pid of alive([...pidsSeen])) process.kill(pid, 'SIGKILL');
  for (const cli of running) cli.kill();
  await disposeRedis(redis);
  for (const project of projects) await rm(project, {recursive: true, force: true});
});

/** A GET on a connection of its own (a cluster hands each connection to a worker). */
function get(url: string): Promise<{status: number; text: string}> {
  return new Promise((resolve, reject) => {
    const req = request(url, {agent: false, timeout: 5000}, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({status: res.statusCode ?? 0, text}));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer within 5 s`)));
    req.on('error', reject);
    req.end();
  });
}

interface Served {
  cli: LongRunningCli;
  project: string;
  http: string;
  envText(extra?: Record<string, string>): string;
  status(): Promise<Status>;
}

async function serve(args: string[], processEnv: Record<string, string> = {}): Promise<Served> {
  const project = await mkdtemp(path.join(tmpdir(), 'tacos-live-'));
  projects.push(project);
  const [httpPort, grpcPort] = await freePorts(2);
  const base: Record<string, string> = {
    SERVER_PORT: String(httpPort),
    GRPC_PORT: String(grpcPort),
    REDIS_ADDRESS: redis.address,
    GRPC_ENABLED: 'true',
    GRPC_TRAFFIC_PERCENT: '10',
    LOG_LEVEL: 'info',
  };
  const envText = (extra: Record<string, string> = {}) =>
    Object.entries({...base, ...extra})
      .map(([key, value]) => `${key}=${value}\n`)
      .join('');
  await writeFile(path.join(project, '.env.local'), envText());
  const cli = startCli(['serve', 'gateway', ...args], {cwd: project, env: cleanEnv(processEnv)});
  running.push(cli);
  const listening = args.includes('--workers') ? 'gateway workers listening' : 'gateway listening';
  await Promise.race([
    cli.waitForLine((line) => line.msg === listening, 30_000),
    cli.exited.then((code) => Promise.reject(new Error(`tacos serve gateway exited ${code}: ${cli.stderr()}`))),
  ]);
  const http = `http://127.0.0.1:${httpPort}`;
  const status = async () => {
    const answer = await get(`${http}/api/v1/rollout`);
    expect(answer.status).toBe(200);
    return JSON.parse(answer.text) as Status;
  };
  return {cli, project, http, envText, status};
}

/** GET /readyz in a loop (bounded in count) until `stop`: how many answered, how many did not with 200. */
function steadyRequests(http: string) {
  let stopped = false;
  const tally = {ok: 0, failed: [] as string[]};
  const loop = (async () => {
    for (let index = 0; index < 2000 && !stopped; index++) {
      try {
        const answer = await get(`${http}/readyz`);
        if (answer.status === 200) tally.ok++;
        else tally.failed.push(`${answer.status} ${answer.text}`);
      } catch (error) {
        tally.failed.push(String(error));
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return tally;
    },
  };
}

describe.each([
  {mode: 'a single process', args: [] as string[]},
  {mode: 'a cluster of 2 workers', args: ['--workers', '2']},
])('live settings of $mode', ({args}) => {
  let gateway: Served;
  let first: Status;

  beforeAll(async () => {
    gateway = await serve(args);
    first = await gateway.status();
  }, 40_000);

  afterAll(async () => {
    gateway.cli.child.kill('SIGTERM');
    expect(await gateway.cli.exited).toBe(0);
  }, 30_000);

  it('starts with the env file: generation 1, the configured share, no rollback', () => {
    expect(first.settings).toMatchObject({
      env_file: '.env.local',
      grpc_enabled: true,
      grpc_traffic_percent: 10,
      generation: 1,
      fixed_by_process_env: [],
      restart_needed: [],
      last_error: null,
    });
    expect(first.workers).toHaveLength(args.length === 0 ? 0 : 2);
    expect(first.backends.reservation).toMatchObject({
      configured_percent: 10,
      effective_percent: 10,
      rolled_back: null,
    });
    expect(first.thresholds).toEqual({
      auto_rollback: true,
      window_seconds: 30,
      min_calls: 20,
      max_error_rate: 0.05,
      max_p99_ratio: 2,
      min_p99_ms: 250,
    });
  });

  it('applies `tacos env switch grpc --percent 100` within 2 s, in the same processes, no request failing', async () => {
    const load = steadyRequests(gateway.http);
    const switched = await runCli(['env', 'switch', 'grpc', '--percent', '100'], {
      cwd: gateway.project,
      env: cleanEnv(),
    });
    expect(switched.code, switched.stderr).toBe(0);
    const reloaded = await until(
      'the new share in GET /api/v1/rollout',
      async () => {
        const status = await gateway.status();
        return status.settings.grpc_traffic_percent === 100 && status.settings.generation >= 2 ? status : undefined;
      },
      2000,
    );
    const tally = await load.stop();
    expect(tally.failed).toEqual([]);
    expect(tally.ok).toBeGreaterThan(0);
    expect(reloaded.pid).toBe(first.pid);
    expect(reloaded.workers).toEqual(first.workers);
    expect(reloaded.backends.payment).toMatchObject({configured_percent: 100, effective_percent: 100});
    const lines = gateway.cli.lines.filter((line) => line.msg === 'settings reloaded');
    expect(lines.length).toBeGreaterThanOrEqual(Math.max(1, first.workers.length));
    expect(lines.at(-1)?.changed).toEqual({GRPC_TRAFFIC_PERCENT: '100'});
    const metrics = await get(`${gateway.http}/metrics`);
    expect(metrics.text).toMatch(/gateway_grpc_share_percent\{backend="reservation",kind="effective"\} 100/);
  });

  it('reloads on SIGHUP, which stops no process', async () => {
    const before = await gateway.status();
    process.kill(gateway.cli.child.pid!, 'SIGHUP');
    const after = await until(
      'a reload after SIGHUP',
      async () => {
        const status = await gateway.status();
        return status.settings.generation > before.settings.generation ? status : undefined;
      },
      5000,
    );
    expect(after.pid).toBe(first.pid);
    expect(after.workers).toEqual(first.workers);
    expect(gateway.cli.child.exitCode).toBeNull();
  });

  it('keeps the old settings when the file has an invalid value, and says why', async () => {
    const before = await gateway.status();
    await writeFile(path.join(gateway.project, '.env.local'), gateway.envText({GRPC_TRAFFIC_PERCENT: 'abc'}));
    const refused = await until(
      'last_error in GET /api/v1/rollout',
      async () => {
        const status = await gateway.status();
        return status.settings.last_error ? status : undefined;
      },
      5000,
    );
    expect(refused.settings.last_error).toMatch(/^GRPC_TRAFFIC_PERCENT=abc is not valid/);
    expect(refused.settings.grpc_traffic_percent).toBe(100);
    expect(refused.settings.generation).toBe(before.settings.generation);
    expect(refused.backends.reservation.effective_percent).toBe(100);
  });

  it('names a port change as needing a restart, and keeps serving where it was', async () => {
    const [otherPort] = await freePorts(1);
    await writeFile(
      path.join(gateway.project, '.env.local'),
      gateway.envText({GRPC_TRAFFIC_PERCENT: '100', SERVER_PORT: String(otherPort)}),
    );
    const changed = await until(
      'restart_needed in GET /api/v1/rollout',
      async () => {
        const status = await gateway.status();
        return status.settings.restart_needed.length > 0 && status.settings.last_error === null ? status : undefined;
      },
      5000,
    );
    expect(changed.settings.restart_needed).toEqual(['SERVER_PORT']);
    const warning = await gateway.cli.waitForLine((line) => line.restart_needed !== undefined, 5000);
    expect(warning).toMatchObject({level: 'warn', restart_needed: ['SERVER_PORT']});
  });

  it('answers a reset only to a token with the rollout:admin scope', async () => {
    const anonymous = await fetch(`${gateway.http}/api/v1/rollout/reset`, {method: 'POST'});
    expect(anonymous.status).toBe(401);
    const admin = await fetch(`${gateway.http}/api/v1/rollout/reset`, {
      method: 'POST',
      headers: {authorization: 'Bearer tacos-dev-token'},
    });
    expect(admin.status).toBe(200);
    expect(((await admin.json()) as Status).backends.reservation.rolled_back).toBeNull();
  });
});

describe('a live variable set in the process environment', () => {
  it('wins over the file, and the gateway says so', async () => {
    const gateway = await serve([], {GRPC_TRAFFIC_PERCENT: '5'});
    try {
      expect((await gateway.status()).settings).toMatchObject({
        grpc_traffic_percent: 5,
        fixed_by_process_env: ['GRPC_TRAFFIC_PERCENT'],
      });
      await writeFile(path.join(gateway.project, '.env.local'), gateway.envText({GRPC_TRAFFIC_PERCENT: '50'}));
      const line = await gateway.cli.waitForLine((each) => each.msg === 'settings reloaded', 5000);
      expect(line.fixed_by_process_env).toEqual(['GRPC_TRAFFIC_PERCENT']);
      const status = await gateway.status();
      expect(status.settings).toMatchObject({grpc_traffic_percent: 5, generation: 2});
      expect(status.backends.reservation.configured_percent).toBe(5);
    } finally {
      gateway.cli.child.kill('SIGTERM');
      expect(await gateway.cli.exited).toBe(0);
    }
  }, 40_000);
});
