/**
 * The gateway's speed against two minimal baselines doing the same join (benchmarks/baselines: node:http
 * and grpc-js, one EVALSHA of the gateway's own JOIN script), all in one run on this machine:
 *   - REST join: the gateway (logging, metrics, validation on) vs node:http      goal >= 75%
 *   - gRPC JoinQueue: the gateway vs grpc-js                                      goal >= 75%
 *   - `serve gateway --workers 2` vs one worker, REST and gRPC                     goal >= 1.3x
 * Load from wrk (REST) and h2load (gRPC) through `tacos bench --engine`, rounds interleaved so a
 * slow moment of the machine hits every target alike; each ratio is the median of the rounds' ratios.
 * It also reads from /proc the CPU per request of each server, of Redis and of the load tool: on two
 * cores shared by all three, they bound what a second worker can add, and it prints that bound.
 * With `--against DIR` (a built checkout of another commit, e.g. a `git worktree` of the one before
 * a change), that build's gateway joins the rounds too, and the change's cost is printed per door:
 *   npm run bench:gateway [-- --rounds 5 --duration 10s] [--against ../tacos-before]
 */
import {execFile, spawn, type ChildProcess} from 'node:child_process';
import {mkdtemp, open, readFile, rm} from 'node:fs/promises';
import {availableParallelism, cpus, release, tmpdir} from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {promisify} from 'node:util';
import {Redis} from 'ioredis';
import {tcpOpen} from '../src/services/net.js';
import {waitUntil} from '../src/services/stack/probes.js';
import {processCpuMicros, processTreeCpuMicros} from '../src/services/proc.js';
import {freePorts} from './free-port.js';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(root, 'bin', 'run.js');
const argument = (name: string, fallback: string) =>
  process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : fallback;
const rounds = Math.min(9, Math.max(1, Number(argument('--rounds', '5'))));
const duration = argument('--duration', '10s');
const against = process.argv.includes('--against') ? path.resolve(argument('--against', '')) : undefined;
// Whole seconds, as wrk counts them; its requests are counted in the CPU per request below.
const WARMUP_SECONDS = 1;
const CONCURRENCY = 50;
// An even number, so that round-robin gives two workers the same share of the connections.
const GRPC_CONNECTIONS = 10;

const work = await mkdtemp(path.join(tmpdir(), 'tacos-bench-gateway-'));
const children: ChildProcess[] = [];

/** Starts a process whose stdout goes to a file, and waits (bounded) until that file shows `ready`; returns its pid. */
async function start(name: string, command: string[], env: Record<string, string>, ready: RegExp): Promise<number> {
  const log = path.join(work, `${name}.log`);
  const file = await open(log, 'w');
  const child = spawn(process.execPath, command, {
    cwd: work,
    env: {...process.env, ...env},
    stdio: ['ignore', file.fd, 'inherit'],
  });
  children.push(child);
  const settled = await waitUntil(
    async () => child.exitCode !== null || ready.test(await readFile(log, 'utf8')),
    30_000,
    undefined,
    100,
  );
  if (!settled || child.exitCode !== null) throw new Error(`${name} did not start (see ${log})`);
  await file.close();
  return child.pid!;
}

interface Target {
  name: string;
  protocol: 'http' | 'grpc';
  address: string;
  /** The server's process (a cluster's primary: its workers are counted with it). */
  pid: number;
}

interface Measured {
  rps: number;
  ok: number;
  /** The load tool's CPU per request, in µs. */
  toolMicros: number;
}

/** CPU per request, in µs, of what shares the two cores during a run. */
interface CpuShares {
  server: number;
  redis: number;
  tool: number;
}

/** requests/s of one `tacos bench` run at the target (wrk for REST, h2load for gRPC). */
async function measure(target: Target): Promise<Measured> {
  const args = [
    BIN,
    'bench',
    '--scenario',
    'join',
    '--protocol',
    target.protocol,
    '--duration',
    duration,
    '--warmup',
    `${WARMUP_SECONDS}s`,
    '--concurrency',
    String(CONCURRENCY),
    '--json',
  ];
  if (target.protocol === 'http')
    args.push('--engine', 'wrk', '--http-url', target.address, '--connections', String(CONCURRENCY));
  else args.push('--engine', 'h2load', '--grpc-addr', target.address, '--connections', String(GRPC_CONNECTIONS));
  const {stdout} = await promisify(execFile)(process.execPath, args, {
    cwd: work,
    timeout: 120_000,
    maxBuffer: 16 << 20,
  });
  const [run] = JSON.parse(stdout).runs as Array<{
    requestsPerSecond: number;
    ok: number;
    errors: Record<string, number>;
    generator: {cpuPercentOfCore: number | null};
  }>;
  const errors = Object.values(run.errors).reduce((sum, count) => sum + count, 0);
  if (errors) throw new Error(`${target.name}: ${errors} errors (${JSON.stringify(run.errors)})`);
  const toolCpu = run.generator.cpuPercentOfCore;
  if (toolCpu === null) throw new Error(`${target.name}: the load tool's CPU could not be read from /proc`);
  return {rps: run.requestsPerSecond, ok: run.ok, toolMicros: (toolCpu / 100) * (1e6 / run.requestsPerSecond)};
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

let client: Redis | undefined;
try {
  const [redisPort, ...ports] = await freePorts(9);
  const redis = spawn(
    'redis-server',
    ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', work],
    {stdio: 'ignore'},
  );
  children.push(redis);
  if (!(await waitUntil(() => tcpOpen('127.0.0.1', redisPort), 10_000)))
    throw new Error(`redis-server did not listen on ${redisPort}`);
  client = new Redis({port: redisPort});
  const redisAddress = `127.0.0.1:${redisPort}`;
  const [httpBaseline, grpcBaseline, http1, grpc1, http2, grpc2, httpAgainst, grpcAgainst] = ports;
  const gatewayEnv = (http: number, grpc: number) => ({
    SERVER_PORT: String(http),
    GRPC_PORT: String(grpc),
    GRPC_ENABLED: 'true',
    REDIS_ADDRESS: redisAddress,
    LOG_LEVEL: 'info',
    SERVER_ENVIRONMENT: 'development',
  });
  const baselineHttpPid = await start(
    'baseline-http',
    [path.join(root, 'benchmarks/baselines/http.mjs'), String(httpBaseline)],
    {REDIS_ADDRESS: redisAddress},
    /listening/,
  );
  const baselineGrpcPid = await start(
    'baseline-grpc',
    [path.join(root, 'benchmarks/baselines/grpc.mjs'), String(grpcBaseline)],
    {REDIS_ADDRESS: redisAddress},
    /listening/,
  );
  const gateway1Pid = await start(
    'gateway-1',
    [BIN, 'serve', 'gateway'],
    gatewayEnv(http1, grpc1),
    /"gateway listening"/,
  );
  const gateway2Pid = await start(
    'gateway-2',
    [BIN, 'serve', 'gateway', '--workers', '2'],
    gatewayEnv(http2, grpc2),
    /"gateway workers listening"/,
  );

  const targets: Target[] = [
    {name: 'node:http baseline', protocol: 'http', address: `http://127.0.0.1:${httpBaseline}`, pid: baselineHttpPid},
    {name: 'gateway REST', protocol: 'http', address: `http://127.0.0.1:${http1}`, pid: gateway1Pid},
    {name: 'gateway REST, 2 workers', protocol: 'http', address: `http://127.0.0.1:${http2}`, pid: gateway2Pid},
    {name: 'grpc-js baseline', protocol: 'grpc', address: `127.0.0.1:${grpcBaseline}`, pid: baselineGrpcPid},
    {name: 'gateway gRPC', protocol: 'grpc', address: `127.0.0.1:${grpc1}`, pid: gateway1Pid},
    {name: 'gateway gRPC, 2 workers', protocol: 'grpc', address: `127.0.0.1:${grpc2}`, pid: gateway2Pid},
  ];
  if (against) {
    const againstPid = await start(
      'gateway-against',
      [path.join(against, 'bin', 'run.js'), 'serve', 'gateway'],
      gatewayEnv(httpAgainst, grpcAgainst),
      /"gateway listening"/,
    );
    targets.push(
      {name: 'gateway REST, --against', protocol: 'http', address: `http://127.0.0.1:${httpAgainst}`, pid: againstPid},
      {name: 'gateway gRPC, --against', protocol: 'grpc', address: `127.0.0.1:${grpcAgainst}`, pid: againstPid},
    );
  }
  const figures = new Map(targets.map((target) => [target.name, [] as number[]]));
  const shares = new Map(targets.map((target) => [target.name, [] as CpuShares[]]));
  for (let round = 1; round <= rounds; round++) {
    for (const target of targets) {
      await client.flushall(); // every run starts from an empty queue
      const redisBefore = processCpuMicros(redis.pid) ?? 0;
      const serverBefore = processTreeCpuMicros(target.pid);
      const {rps, ok, toolMicros} = await measure(target);
      // The warm-up's requests were served too, at about the same rate.
      const served = ok + rps * WARMUP_SECONDS;
      shares.get(target.name)!.push({
        server: (processTreeCpuMicros(target.pid) - serverBefore) / served,
        redis: ((processCpuMicros(redis.pid) ?? 0) - redisBefore) / served,
        tool: toolMicros,
      });
      figures.get(target.name)!.push(rps);
      console.error(`round ${round}/${rounds}: ${target.name} ${rps.toFixed(0)} req/s`);
    }
  }

  const medianRps = (name: string) => median(figures.get(name)!);
  // Each ratio is taken within a round (runs seconds apart), then the median over the rounds: the
  // machine's speed drifts between rounds more than between neighbouring runs.
  const ratio = (of: string, to: string) =>
    median(figures.get(of)!.map((value, round) => value / figures.get(to)![round]));
  const cpu = (name: string, part: keyof CpuShares) => median(shares.get(name)!.map((share) => share[part]));
  // Two workers share the two cores with Redis and the load tool: at best, the cores divided by
  // all of a request's CPU. One worker is held by its own core: each round, that ceiling over its rate.
  const ceiling = (oneWorker: string) =>
    median(
      shares
        .get(oneWorker)!
        .map(
          ({server, redis, tool}, round) =>
            (availableParallelism() * 1e6) / (server + redis + tool) / figures.get(oneWorker)![round],
        ),
    );
  const goals = [
    {what: 'gateway REST / node:http baseline', ratio: ratio('gateway REST', 'node:http baseline'), goal: 0.75},
    {what: 'gateway gRPC / grpc-js baseline', ratio: ratio('gateway gRPC', 'grpc-js baseline'), goal: 0.75},
    {
      what: 'REST, 2 workers / 1 worker',
      ratio: ratio('gateway REST, 2 workers', 'gateway REST'),
      goal: 1.3,
      ceiling: ceiling('gateway REST'),
    },
    {
      what: 'gRPC, 2 workers / 1 worker',
      ratio: ratio('gateway gRPC, 2 workers', 'gateway gRPC'),
      goal: 1.3,
      ceiling: ceiling('gateway gRPC'),
    },
  ];
  console.log(
    `machine: ${cpus().length} x ${cpus()[0]?.model ?? 'unknown CPU'}, Linux ${release()}, Node ${process.version}`,
  );
  console.log(
    `load: tacos bench --engine wrk (REST, ${CONCURRENCY} connections) / h2load (gRPC, ${GRPC_CONNECTIONS} connections x ${CONCURRENCY / GRPC_CONNECTIONS} streams), ${duration} per run, ${rounds} interleaved rounds, median`,
  );
  console.log('');
  for (const target of targets)
    console.log(
      `${target.name.padEnd(26)} ${medianRps(target.name).toFixed(0).padStart(7)} req/s   (rounds: ${figures
        .get(target.name)!
        .map((value) => value.toFixed(0))
        .join(', ')})`,
    );
  console.log('');
  console.log(
    `CPU per request, µs (median): ${'server'.padStart(8)} ${'Redis'.padStart(7)} ${'load tool'.padStart(10)}`,
  );
  for (const target of targets)
    console.log(
      `  ${target.name.padEnd(27)} ${cpu(target.name, 'server').toFixed(0).padStart(8)} ${cpu(target.name, 'redis').toFixed(0).padStart(7)} ${cpu(target.name, 'tool').toFixed(0).padStart(10)}`,
    );
  console.log('');
  if (against) {
    console.log(`--against ${against}:`);
    for (const door of ['REST', 'gRPC']) {
      const change = ratio(`gateway ${door}`, `gateway ${door}, --against`);
      const cpuChange = cpu(`gateway ${door}`, 'server') / cpu(`gateway ${door}, --against`, 'server');
      console.log(
        `  gateway ${door} / the --against build: ${change.toFixed(3)} of its req/s, ${cpuChange.toFixed(3)} of its CPU per request (medians of the rounds)`,
      );
    }
    console.log('');
  }
  for (const {what, ratio, goal, ceiling} of goals) {
    const bound =
      ceiling === undefined
        ? ''
        : `; ${availableParallelism()} cores shared with Redis and the load tool allow at most ${ceiling.toFixed(2)}x`;
    console.log(
      `${what.padEnd(36)} ${ratio.toFixed(2)} (median of the rounds' ratios; goal ${goal >= 1 ? `>= ${goal}x` : `>= ${goal * 100}%`}${bound}): ${ratio >= goal ? 'met' : 'NOT met'}`,
    );
  }
} finally {
  // Before Redis stops: a client left connected would log every failed reconnect.
  client?.disconnect();
  const running = () => children.filter((child) => child.exitCode === null && child.signalCode === null);
  for (const child of children.reverse()) child.kill('SIGTERM');
  await waitUntil(async () => running().length === 0, 1500);
  for (const child of running()) child.kill('SIGKILL');
  await rm(work, {recursive: true, force: true});
}
