/**
 * `tacos bench` (join scenario, builtin engine) against a real gateway on a real redis-server: the
 * service from the sources (worker threads under tsx) and the built CLI (dist worker), the bounds
 * in time and count, errors counted by code when Redis goes away mid-run, the check before the
 * load, loopback only, and Ctrl-C.
 */
import {setTimeout as sleep} from 'node:timers/promises';
import {execa} from 'execa';
import {Redis} from 'ioredis';
import {describe, expect, it} from 'vitest';
import {runBench} from '../../src/services/bench/bench.js';
import {resolveBenchOptions, type BenchRequest} from '../../src/services/bench/options.js';
import {BIN, REPO_ROOT, runCli} from '../helpers/cli.js';
import {startTestGateway, waitForReady} from '../helpers/gateway.js';
import {disposeRedis, freePort, startRedis} from '../helpers/redis.js';
import {gatewayFixture} from './fixture.js';
import {expectCleanRun, expectOrderedLatencies, tableRow} from './figures.js';

const {redis, gateway, targetFlags} = gatewayFixture();

function join(request: Partial<BenchRequest>, target = gateway()): BenchRequest {
  return {
    scenario: 'join',
    protocol: 'both',
    engine: 'builtin',
    httpUrl: target.http,
    grpcAddress: target.grpc,
    durationMs: 1000,
    concurrency: 4,
    threads: 2,
    ...request,
  };
}

/** Resolves once the event's queue holds `count` joins: the load (the warm-up at least) is under way. */
async function joinsArrived(redisPort: number, eventId: string, count = 20): Promise<void> {
  const client = new Redis({port: redisPort, host: '127.0.0.1', maxRetriesPerRequest: 1});
  try {
    const deadline = Date.now() + 15_000;
    while ((await client.zcard(`tacos:queue:{${eventId}}:waiting`)) < count) {
      if (Date.now() > deadline) throw new Error(`no ${count} joins of ${eventId} within 15 s`);
      await sleep(20);
    }
  } finally {
    client.disconnect();
  }
}

describe('the service', () => {
  it('runs join over gRPC then over REST, and compares them', async () => {
    const report = await runBench(resolveBenchOptions(join({})), {signal: new AbortController().signal});
    expect(report.runs).toHaveLength(2);
    expectCleanRun(report.runs[0], 'join over gRPC');
    expectCleanRun(report.runs[1], 'join over REST');
    // Two threads, each with its share: gRPC one channel each, REST one connection per request in flight.
    expect(report.runs[0].shape).toEqual({threads: 2, connections: 2, concurrency: 4});
    expect(report.runs[1].shape).toEqual({threads: 2, connections: 4, concurrency: 4});
    expect(report.runs[0].generator.eventLoopUtilization).toHaveLength(2);
    expect(report.runs[0].generator.cpuPercentOfCore).toBeGreaterThan(0);
    expect(report.ratio!.requestsPerSecond).toBeGreaterThan(0);
    expect(report.ratio!.p50).toBeGreaterThan(0);
    expect(report.eventId).toMatch(/^bench_\d+$/);
    expect(report.interrupted).toBe(false);
  });

  it('stops at --max-requests, before --duration', async () => {
    const started = performance.now();
    const report = await runBench(resolveBenchOptions(join({protocol: 'http', durationMs: 20_000, maxRequests: 40})), {
      signal: new AbortController().signal,
    });
    expect(performance.now() - started).toBeLessThan(10_000);
    expect(report.runs[0].requests).toBeGreaterThan(0);
    expect(report.runs[0].requests).toBeLessThanOrEqual(40);
  });

  it('counts errors by code when Redis goes away mid-run, and still ends on time', async () => {
    const ownRedis = await startRedis();
    const failing = await startTestGateway({
      REDIS_ADDRESS: ownRedis.address,
      LOG_LEVEL: 'silent',
      REDIS_COMMAND_TIMEOUT: '200ms',
    });
    try {
      await waitForReady(failing);
      const options = resolveBenchOptions(
        join({durationMs: 1500, warmupMs: 100, eventId: 'bench_redis_gone'}, failing),
      );
      // How long each run's load lasted, from its start to its end (thread start-up aside).
      const loadMs: number[] = [];
      let startedAt = 0;
      const progress = {
        runStarted: () => (startedAt = performance.now()),
        runEnded: () => loadMs.push(performance.now() - startedAt),
      };
      const bench = runBench(options, {signal: new AbortController().signal, progress});
      // The checks passed and the gRPC run is measuring: Redis goes away.
      await joinsArrived(ownRedis.port, options.eventId);
      await sleep(600);
      await ownRedis.stop(true);
      const report = await bench;
      const [overGrpc, overRest] = report.runs;
      expect(overGrpc.ok).toBeGreaterThan(0);
      expect(overGrpc.errors.UNAVAILABLE, JSON.stringify(overGrpc.errors)).toBeGreaterThan(0);
      expect(overRest.errors['503'], JSON.stringify(overRest.errors)).toBeGreaterThan(0);
      expect(overRest.requests).toBe(overRest.ok + Object.values(overRest.errors).reduce((sum, n) => sum + n, 0));
      // 1.6 s of load, and the requests in flight at the end (Redis commands time out after 200 ms).
      expect(loadMs).toHaveLength(2);
      for (const ms of loadMs) expect(ms).toBeLessThan(3500);
    } finally {
      await failing.close();
      await disposeRedis(ownRedis);
    }
  });

  it('says when the gateway limits each client, and names the limit as the cause of a refused check', async () => {
    const limited = await startTestGateway({
      REDIS_ADDRESS: redis().address,
      LOG_LEVEL: 'silent',
      RATE_LIMIT_ENABLED: 'true',
      RATE_LIMIT_RPS: '1000',
      RATE_LIMIT_BURST: '1000',
      REDIS_DATABASE: '3',
    });
    const spent = await startTestGateway({
      REDIS_ADDRESS: redis().address,
      LOG_LEVEL: 'silent',
      RATE_LIMIT_ENABLED: 'true',
      RATE_LIMIT_RPS: '0.01',
      RATE_LIMIT_BURST: '1',
      REDIS_DATABASE: '4',
    });
    try {
      await Promise.all([waitForReady(limited), waitForReady(spent)]);
      const report = await runBench(resolveBenchOptions(join({protocol: 'http', maxRequests: 20}, limited)), {
        signal: new AbortController().signal,
      });
      expect(report.warnings.join('\n')).toMatch(
        /limits each client to 1000 requests per second.*RATE_LIMIT_ENABLED=false/,
      );

      await fetch(`${spent.http}/api/v1/queue/stats`).then((response) => response.arrayBuffer());
      const refused = runBench(resolveBenchOptions(join({protocol: 'http', maxRequests: 20}, spent)), {
        signal: new AbortController().signal,
      });
      await expect(refused).rejects.toMatchObject({
        message: expect.stringMatching(/answered 429 RATE_LIMITED/),
        hint: expect.stringMatching(/rate limit.*RATE_LIMIT_ENABLED=false/),
      });
    } finally {
      await Promise.all([limited.close(), spent.close()]);
    }
  });
});

describe('the CLI', () => {
  it('prints a row per run with sane figures, the ratio and the generator', async () => {
    const result = await runCli(['bench', ...targetFlags(), '--duration', '1s', '--concurrency', '4']);
    expect(result.code, result.stderr).toBe(0);
    for (const label of ['join over gRPC', 'join over REST']) {
      const row = tableRow(result.stdout, label);
      expect(row.engine).toBe('builtin');
      expect(row.requests).toBeGreaterThan(0);
      expectOrderedLatencies(row.latency);
      expect(row.errors).toBe('-');
    }
    expect(result.stdout).toMatch(/gRPC \/ HTTP: \d+\.\d\dx requests\/s, p50 \d+\.\d\dx, p99 \d+\.\d\dx/);
    expect(result.stdout).toMatch(
      /generator, join over gRPC: \d+ threads?, CPU \d+% of one core \(\d+% of the machine\), event loops? [\d% ]+busy/,
    );
  });

  it('prints one JSON object with --json: both runs, the ratio, the machine, the options', async () => {
    const result = await runCli([
      'bench',
      ...targetFlags(),
      '--duration',
      '1s',
      '--concurrency',
      '4',
      '--event',
      'bench_cli_json',
      '--json',
    ]);
    expect(result.code, result.stderr).toBe(0);
    // Nothing but the report on stdout: it parses as one JSON object.
    const report = JSON.parse(result.stdout);
    expect(report.runs.map((run: {label: string}) => run.label)).toEqual(['join over gRPC', 'join over REST']);
    for (const run of report.runs) expectCleanRun(run, run.label);
    expect(report.ratio).toEqual({
      requestsPerSecond: expect.any(Number),
      p50: expect.any(Number),
      p99: expect.any(Number),
    });
    expect(report.machine).toMatchObject({cpus: expect.any(Number), node: process.version});
    expect(report.options).toMatchObject({scenario: 'join', durationMs: 1000, concurrency: 4, engine: 'builtin'});
    expect(report.eventId).toBe('bench_cli_json');
  });

  it('exits 1 before any load when nothing answers, naming what answered', async () => {
    const [httpPort, grpcPort] = [await freePort(), await freePort()];
    const result = await runCli([
      'bench',
      '--http-url',
      `http://127.0.0.1:${httpPort}`,
      '--grpc-addr',
      `127.0.0.1:${grpcPort}`,
      '--duration',
      '1s',
    ]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      `join over gRPC: 127.0.0.1:${grpcPort}/gateway.v1.QueueService/JoinQueue answered UNAVAILABLE`,
    );
    expect(result.stderr).toMatch(/Hint: Is the stack running \(tacos up\) with GRPC_ENABLED=true/);
    const rest = await runCli([
      'bench',
      '--http-url',
      `http://127.0.0.1:${httpPort}`,
      '--protocol',
      'http',
      '--duration',
      '1s',
    ]);
    expect(rest.code).toBe(1);
    expect(rest.stderr).toContain(
      `join over REST: POST http://127.0.0.1:${httpPort}/api/v1/queue/join answered ECONNREFUSED`,
    );
  });

  it('refuses targets that are not loopback (exit 2)', async () => {
    const http = await runCli(['bench', '--http-url', 'http://192.0.2.10:8000', '--protocol', 'http']);
    expect(http.code).toBe(2);
    expect(http.stderr).toContain('loopback');
    const grpc = await runCli(['bench', '--http-url', gateway().http, '--grpc-addr', 'example.com:9090']);
    expect(grpc.code).toBe(2);
    expect(grpc.stderr).toContain('The gRPC target example.com:9090 is not on this machine');
  });

  it('stops on Ctrl-C, prints what it measured and exits 130', async () => {
    const child = execa(
      process.execPath,
      [BIN, 'bench', ...targetFlags(), '--duration', '30s', '--concurrency', '4', '--event', 'bench_sigint', '--json'],
      {
        cwd: REPO_ROOT,
        stdin: 'ignore',
        reject: false,
        forceKillAfterDelay: false,
      },
    );
    try {
      // The warm-up (1 s) is under way; then some measuring.
      await joinsArrived(redis().port, 'bench_sigint');
      await sleep(1500);
      const interruptedAt = performance.now();
      child.kill('SIGINT');
      const {exitCode, stdout, stderr} = await child;
      expect(exitCode, stderr).toBe(130);
      expect(performance.now() - interruptedAt).toBeLessThan(5000);
      const report = JSON.parse(stdout);
      expect(report.interrupted).toBe(true);
      expect(report.runs).toHaveLength(1);
      expect(report.runs[0]).toMatchObject({label: 'join over gRPC', interrupted: true});
      expect(report.runs[0].durationMs).toBeLessThan(30_000);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
