/**
 * `tacos serve gateway --workers N` end to end: the real CLI as a node:cluster primary with its
 * workers, a real redis-server, REST over fresh connections and gRPC over separate channels, all
 * on 127.0.0.1; what a user sees: which processes serve, /metrics, stopping, a worker or the
 * primary killed, bad counts.
 */
import {request} from 'node:http';
import {mkdtemp, rm} from 'node:fs/promises';
import {createServer, type Server} from 'node:net';
import {tmpdir} from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import {execa} from 'execa';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {packageDefinition} from '../../src/services/server-kit/grpc/server.js';
import {BIN, runCli, startCli, type LongRunningCli} from '../helpers/cli.js';
import {unaryCall} from '../helpers/grpc-client.js';
import {parseMetrics} from '../helpers/metrics.js';
import {disposeRedis, freePort, startRedis, type RedisProcess} from '../helpers/redis.js';
import {allGone, alive, descendants, heldPorts, processesIn, until} from '../helpers/up-project.js';

type Line = Record<string, any>;

let redis: RedisProcess;
let project: string;
const running: LongRunningCli[] = [];
const pidsSeen = new Set<number>();

beforeAll(async () => {
  redis = await startRedis();
  project = await mkdtemp(path.join(tmpdir(), 'tacos-workers-'));
});

afterAll(async () => {
  // Whatever a failing test left: workers first, then their primary.
  for (const cli of running) for (const pid of cli.child.pid ? descendants(cli.child.pid) : []) pidsSeen.add(pid);
  for (const pid of alive([...pidsSeen])) process.kill(pid, 'SIGKILL');
  for (const cli of running) cli.kill();
  await disposeRedis(redis);
  await rm(project, {recursive: true, force: true});
});

interface Cluster {
  cli: LongRunningCli;
  http: string;
  grpc: string;
  ports: number[];
  workers: number[];
}

/**
 * `tacos serve gateway ARGS` with gRPC on, on free ports; resolves once every worker listens. A
 * port picked free can be taken by a parallel test file before the gateway binds it: that start
 * is retried on other ports.
 */
async function serve(args: string[], env: Record<string, string> = {}): Promise<Cluster> {
  for (let attempt = 1; ; attempt++) {
    const ports = [await freePort(), await freePort()];
    const cli = startCli(['serve', 'gateway', ...args], {
      cwd: project,
      env: {
        REDIS_ADDRESS: redis.address,
        SERVER_PORT: String(ports[0]),
        GRPC_PORT: String(ports[1]),
        GRPC_ENABLED: 'true',
        LOG_LEVEL: 'info',
        ...env,
      },
    });
    running.push(cli);
    try {
      const ready = await Promise.race([
        cli.waitForLine((line) => line.msg === 'gateway workers listening', 30_000),
        cli.exited.then((code) =>
          Promise.reject(new Error(`tacos serve gateway exited ${code} before listening: ${cli.stderr()}`)),
        ),
      ]);
      for (const pid of ready.workers) pidsSeen.add(pid);
      return {cli, http: ready.http, grpc: String(ready.grpc).replace('grpc://', ''), ports, workers: ready.workers};
    } catch (error) {
      const portTaken = cli.child.exitCode !== null && /EADDRINUSE/.test(JSON.stringify(cli.lines) + cli.stderr());
      if (!portTaken || attempt === 3) throw error;
    }
  }
}

/** A REST call on a connection of its own (no keep-alive): the cluster hands each connection to a worker. */
function call(url: string, method = 'GET', body?: unknown): Promise<{status: number; text: string}> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {method, agent: false, headers: body === undefined ? {} : {'content-type': 'application/json'}, timeout: 10_000},
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({status: res.statusCode ?? 0, text}));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: no answer within 10 s`)));
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/** A QueueService client with a connection of its own (grpc-js otherwise shares one per target). */
function queueClient(address: string): grpc.Client & Record<string, any> {
  const Client = grpc.makeGenericClientConstructor(
    packageDefinition()['gateway.v1.QueueService'] as grpc.ServiceDefinition,
    'QueueService',
  );
  return new Client(address, grpc.credentials.createInsecure(), {'grpc.use_local_subchannel_pool': 1}) as grpc.Client &
    Record<string, any>;
}

/** The value of a sample of the /metrics text, 0 when absent. */
function sampleValue(text: string, name: string, labels: Record<string, string>): number {
  const sample = parseMetrics(text).find(
    (each) => each.name === name && Object.entries(labels).every(([key, value]) => each.labels[key] === value),
  );
  return sample?.value ?? 0;
}

/** Pids of the log lines that match, once `count` of them have arrived. */
async function pidsOf(cli: LongRunningCli, match: (line: Line) => boolean, count: number): Promise<Set<number>> {
  const lines = await until(
    `${count} matching log lines`,
    () => {
      const found = cli.lines.filter(match);
      return found.length >= count ? found : undefined;
    },
    10_000,
  );
  return new Set(lines.map((line) => line.pid as number));
}

const joinLine = (line: Line) => line.msg === 'http request' && line.route === '/api/v1/queue/join';

async function expectStoppedCleanly(gateway: Cluster): Promise<void> {
  expect(await gateway.cli.exited).toBe(0);
  await allGone(gateway.workers, 5000);
  expect(descendants(gateway.cli.child.pid!)).toEqual([]);
  expect(await heldPorts(gateway.ports)).toEqual([]);
}

// Each test starts two or three CLI processes: on two busy cores that takes a few seconds.
describe('tacos serve gateway --workers', {timeout: 60_000}, () => {
  it('serves REST and gRPC from two worker processes, and /metrics on any of them counts both', async () => {
    const gateway = await serve(['--workers', '2']);
    expect(gateway.workers).toHaveLength(2);
    expect(new Set(gateway.workers).size).toBe(2);
    expect(gateway.workers).not.toContain(gateway.cli.child.pid);
    // The workers are the primary's children, each logging that it listens, with its pid.
    expect(descendants(gateway.cli.child.pid!).sort()).toEqual([...gateway.workers].sort());
    expect(await pidsOf(gateway.cli, (line) => line.msg === 'gateway listening', 2)).toEqual(new Set(gateway.workers));

    const joins = 20;
    for (let index = 0; index < joins; index++) {
      const joined = await call(`${gateway.http}/api/v1/queue/join`, 'POST', {
        event_id: 'evt_workers',
        user_id: `u${index}`,
      });
      expect(joined.status, joined.text).toBe(202);
    }
    expect(await pidsOf(gateway.cli, joinLine, joins)).toEqual(new Set(gateway.workers));

    const clients = Array.from({length: 4}, () => queueClient(gateway.grpc));
    try {
      for (const client of clients) {
        for (let index = 0; index < 3; index++) {
          const joined = await unaryCall(client, 'JoinQueue', {event_id: 'evt_workers_grpc'});
          expect(joined.waiting_token).toBeTruthy();
        }
      }
    } finally {
      for (const client of clients) client.close();
    }
    const grpcLine = (line: Line) => line.msg === 'grpc call' && line.method === '/gateway.v1.QueueService/JoinQueue';
    expect(await pidsOf(gateway.cli, grpcLine, 12)).toEqual(new Set(gateway.workers));

    // Every scrape, whichever worker answers it, has the totals of both; a dozen at once too.
    const scrapes = await Promise.all(Array.from({length: 12}, () => call(`${gateway.http}/metrics`)));
    for (const metrics of scrapes) {
      expect(metrics.status, metrics.text).toBe(200);
      const join = {method: 'POST', route: '/api/v1/queue/join', status_code: '202'};
      expect(sampleValue(metrics.text, 'http_server_requests_total', join)).toBe(joins);
      expect(sampleValue(metrics.text, 'http_server_requests_duration_seconds_count', join)).toBe(joins);
      const grpcJoin = {grpc_service: 'gateway.v1.QueueService', grpc_method: 'JoinQueue'};
      expect(sampleValue(metrics.text, 'grpc_server_handled_total', {...grpcJoin, grpc_code: 'OK'})).toBe(12);
      expect(sampleValue(metrics.text, 'grpc_server_started_total', grpcJoin)).toBe(12);
    }
    expect(await pidsOf(gateway.cli, (line) => line.msg === 'http request' && line.route === '/metrics', 12)).toEqual(
      new Set(gateway.workers),
    );

    gateway.cli.child.kill('SIGTERM');
    await expectStoppedCleanly(gateway);
    expect(
      gateway.cli.lines
        .filter((line) => line.msg === 'gateway stopped')
        .map((line) => line.pid ?? 'primary')
        .sort(),
    ).toEqual([...gateway.workers, 'primary'].sort());
    expect(gateway.cli.lines.at(-1)).toMatchObject({msg: 'gateway stopped'});
    expect(gateway.cli.stderr()).toBe('');
  });

  it('takes its count from GATEWAY_WORKERS, and a second stop signal changes nothing', async () => {
    const gateway = await serve([], {GATEWAY_WORKERS: '3'});
    expect(new Set(gateway.workers).size).toBe(3);
    gateway.cli.child.kill('SIGINT');
    gateway.cli.child.kill('SIGTERM');
    await expectStoppedCleanly(gateway);
  });

  it('kills a worker that does not stop within the grace time, and still exits 0', async () => {
    const gateway = await serve(['--workers', '2'], {SERVER_SHUTDOWN_GRACE: '200ms'});
    const [frozen] = gateway.workers;
    // A stopped process cannot act on SIGTERM; SIGKILL still ends it.
    process.kill(frozen, 'SIGSTOP');
    const stoppingAt = Date.now();
    gateway.cli.child.kill('SIGTERM');
    await expectStoppedCleanly(gateway);
    // The grace of calls in flight plus the primary's margin of 5 s.
    expect(Date.now() - stoppingAt).toBeGreaterThanOrEqual(5000);
    expect(
      gateway.cli.lines.find((line) => line.msg === 'gateway workers did not stop in time; killing them'),
    ).toMatchObject({level: 'warn', workers: [frozen]});
  });

  it('replaces a worker that dies, and the replacement serves', async () => {
    const gateway = await serve(['--workers', '2']);
    const [victim, survivor] = gateway.workers;
    process.kill(victim, 'SIGKILL');
    const died = await gateway.cli.waitForLine((line) => line.msg === 'gateway worker died; starting another');
    expect(died).toMatchObject({level: 'warn', pid: victim, signal: 'SIGKILL'});
    // While the replacement starts (it cannot answer yet), /metrics still answers: from the listening workers.
    const scrapedMeanwhile = await call(`${gateway.http}/metrics`);
    expect(scrapedMeanwhile.status, scrapedMeanwhile.text).toBe(200);
    expect(scrapedMeanwhile.text).toContain('http_server_requests_total');
    const listening = await gateway.cli.waitForLine(
      (line) => line.msg === 'gateway listening' && !gateway.workers.includes(line.pid),
    );
    const replacement = listening.pid as number;
    pidsSeen.add(replacement);
    expect(descendants(gateway.cli.child.pid!).sort()).toEqual([survivor, replacement].sort());

    // Connections alternate between the two workers: a few are enough to reach the new one.
    for (let index = 0; index < 6; index++) {
      const joined = await call(`${gateway.http}/api/v1/queue/join`, 'POST', {
        event_id: 'evt_replaced',
        user_id: `r${index}`,
      });
      expect(joined.status, joined.text).toBe(202);
    }
    expect(await pidsOf(gateway.cli, joinLine, 6)).toContain(replacement);
    const client = queueClient(gateway.grpc);
    try {
      expect((await unaryCall(client, 'JoinQueue', {event_id: 'evt_replaced'})).waiting_token).toBeTruthy();
    } finally {
      client.close();
    }

    gateway.cli.child.kill('SIGTERM');
    await expectStoppedCleanly({...gateway, workers: [survivor, replacement]});
  });

  it('stops with exit 1, naming the last exit, when workers keep dying', async () => {
    const gateway = await serve(['--workers', '2']);
    const primary = gateway.cli.child.pid!;
    // Three deaths within 10 s with two workers: kill whatever worker the primary has, until it gives up.
    const killed = new Set<number>();
    await until(
      'the primary gives up',
      async () => {
        if (gateway.cli.child.exitCode !== null) return true;
        for (const pid of descendants(primary)) {
          pidsSeen.add(pid);
          try {
            if (!killed.has(pid)) process.kill(pid, 'SIGKILL');
          } catch (error) {
            // Listed a moment ago, gone since (ESRCH): a worker the primary was stopping.
            if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
          }
          killed.add(pid);
        }
        return undefined;
      },
      10_000,
      20,
    );
    expect(await gateway.cli.exited).toBe(1);
    expect(killed.size).toBeGreaterThanOrEqual(3);
    expect(gateway.cli.stderr()).toMatch(
      /Gateway workers keep dying \(\d+ exits within 10 s\); the last: gateway worker \d+ was killed by SIGKILL/,
    );
    await allGone([...killed], 5000);
    expect(await heldPorts(gateway.ports)).toEqual([]);
  });

  it('leaves no worker behind when the primary is SIGKILLed', async () => {
    const gateway = await serve(['--workers', '2']);
    gateway.cli.child.kill('SIGKILL');
    await gateway.cli.exited;
    await allGone(gateway.workers, 5000);
    expect(await heldPorts(gateway.ports)).toEqual([]);
  });

  it('stops cleanly when stdin closes under TACOS_WATCH_PARENT (`tacos up` gone)', async () => {
    const ports = [await freePort(), await freePort()];
    const child = execa(process.execPath, [BIN, 'serve', 'gateway', '--workers', '2'], {
      cwd: project,
      env: {
        REDIS_ADDRESS: redis.address,
        SERVER_PORT: String(ports[0]),
        GRPC_PORT: String(ports[1]),
        GRPC_ENABLED: 'true',
        TACOS_WATCH_PARENT: '1',
      },
      stdio: ['pipe', 'pipe', 'inherit'],
      buffer: false,
      reject: false,
    });
    const exited = child.then((result) => result.exitCode);
    try {
      let stdout = '';
      child.stdout.on('data', (chunk) => (stdout += chunk));
      const ready = await until(
        'the workers listen',
        () => stdout.split('\n').find((line) => line.includes('"gateway workers listening"')),
        30_000,
      );
      const workers = (JSON.parse(ready) as Line).workers as number[];
      for (const pid of workers) pidsSeen.add(pid);
      child.stdin.end();
      expect(await exited).toBe(0);
      await allGone(workers, 5000);
      expect(await heldPorts(ports)).toEqual([]);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('says once which port is taken, exits 1 and leaves no worker', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as {port: number}).port;
    try {
      const result = await runCli(['serve', 'gateway', '--workers', '2'], {
        cwd: project,
        env: {
          REDIS_ADDRESS: redis.address,
          SERVER_PORT: String(port),
          GRPC_PORT: String(await freePort()),
          GRPC_ENABLED: 'true',
        },
        timeoutMs: 45_000,
      });
      expect(result.code).toBe(1);
      expect(result.stderr.match(/Cannot serve HTTP on 127\.0\.0\.1:\d+/g)).toEqual([
        `Cannot serve HTTP on 127.0.0.1:${port}`,
      ]);
      expect(result.stderr).toContain('Hint: Another process may hold the port');
      await until(
        'no process left in the project dir',
        () => (processesIn(project).length === 0 ? true : undefined),
        5000,
      );
    } finally {
      blocker.close();
    }
  });

  it.each([
    [['--workers', '0'], 2, /"0" is not a number of workers/],
    [['--workers', 'abc'], 2, /"abc" is not a number of workers/],
    [['--workers', '65'], 2, /"65" is not a number of workers/],
  ])('refuses %j with exit %i', async (args, code, message) => {
    const result = await runCli(['serve', 'gateway', ...args], {cwd: project, env: {REDIS_ADDRESS: redis.address}});
    expect(result.code).toBe(code);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).toContain('Give a whole number from 1 to 64');
  });

  it('names a bad GATEWAY_WORKERS and exits 1 without starting', async () => {
    const result = await runCli(['serve', 'gateway'], {
      cwd: project,
      env: {REDIS_ADDRESS: redis.address, GATEWAY_WORKERS: 'two'},
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('GATEWAY_WORKERS=two is not valid: expected a whole number from 1 to 64.');
  });
});
