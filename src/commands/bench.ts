import * as Flags from '@oclif/core/flags';
import {TacosCommand} from '../cli/base-command.js';
import {durationFlag, envFlag} from '../cli/flags.js';
import {runBench} from '../services/bench/bench.js';
import {
  ENGINES,
  LIMITS,
  PROTOCOL_CHOICES,
  SCENARIOS,
  WAITING_MODE_CHOICES,
  resolveBenchOptions,
  resolveWaitingRoomOptions,
} from '../services/bench/options.js';
import {terminalProgress} from '../services/bench/progress.js';
import {formatReport} from '../services/bench/report.js';
import {runWaitingRoom} from '../services/bench/waiting-room.js';
import {formatWaitingRoomReport} from '../services/bench/waiting-room-report.js';

/** Exit code of a run stopped by Ctrl-C (128 + SIGINT), after its figures are printed. */
const INTERRUPTED_EXIT = 130;

export default class Bench extends TacosCommand {
  static override summary = 'Drive load at the running stack and compare gRPC with HTTP.';
  static override description = `Scenarios: join sends JoinQueue over gRPC and POST /api/v1/queue/join over REST (a fresh event per invocation unless --event); journey sends GET /api/v1/events/evt_2026_concert/availability with a development token, once with the gateway's backend calls forced over gRPC and once over HTTP (header x-tacos-backend-protocol); --protocol split sends one run without that header, so the gateway's sticky split (GRPC_TRAFFIC_PERCENT, per user) picks the road, and reports how many answers came over each (header x-tacos-backend-road, outside production). --users N makes N development tokens (users bench-user-0 ...) that the requests take in turn (builtin engine only). Targets: the gateway of the environment (127.0.0.1:SERVER_PORT and :GRPC_PORT), loopback only. Before any load, one real request per run must answer OK.

Every run is bounded by --duration and --max-requests; requests in flight at the end are waited for (up to --timeout). The builtin engine runs in worker threads (default: half the CPUs, 1 to 4): REST over keep-alive HTTP/1.1 with one connection per request in flight, gRPC with one channel per thread and many streams. It reports its own CPU and each thread's event-loop use, and warns when a thread was over 90% busy. --engine h2load (gRPC and REST) or wrk (REST) use those tools when installed.

waiting-room joins --users N people (default 1,000) to a fresh event per way, then, for each way of --mode (poll: GET /api/v1/queue/status every 2 s; ws: GET /api/v1/queue/ws; sse: GET /api/v1/queue/events; all: the three in turn), follows them from --threads subscriber threads (default 1) while an admitter lets the head of the line in (POST /api/v1/queue/enter, --admit-rate a second) for --duration. Per way: the gateway's CPU (of the process listening on its HTTP port, from /proc) in all and per waiting person per second, Redis's CPU (INFO cpu, of --redis-addr or the environment's REDIS_ADDRESS), the gateway's RSS and its growth per connected person, and the delay from an admission to each person, and to every person, seeing the new position (p50/p99). Sockets need file descriptors in both processes: raise ulimit -n above --users for the bench and for the gateway.

req/s and latencies count OK answers (202, 200, gRPC OK); errors are counted by code (HTTP status, gRPC code name, connection error).

Exit codes: 0 the runs completed (errors counted in the figures); 1 a target did not answer OK before the load, or an engine failed; 2 usage (bad flags, a target not on loopback, h2load or wrk not installed); 130 stopped by Ctrl-C (the figures measured so far are printed).`;
  static override examples = [
    '<%= config.bin %> bench',
    '<%= config.bin %> bench --scenario join --protocol grpc --duration 30s --concurrency 200',
    '<%= config.bin %> bench --scenario journey --json > journey.json',
    '<%= config.bin %> bench --scenario journey --protocol split --users 1000 --duration 1m',
    '<%= config.bin %> bench --scenario waiting-room --users 2000 --mode all --duration 20s',
    '<%= config.bin %> bench --scenario waiting-room --users 20000 --mode ws --json > waiting-room.json',
    '<%= config.bin %> bench --engine h2load --duration 20s',
    '<%= config.bin %> bench --engine wrk --protocol http --connections 100 --concurrency 100',
    '<%= config.bin %> bench --http-url http://127.0.0.1:8000 --grpc-addr 127.0.0.1:9090 --max-requests 10000',
  ];
  static override flags = {
    scenario: Flags.string({char: 's', description: 'What to send.', options: [...SCENARIOS], default: 'join'}),
    protocol: Flags.string({
      char: 'p',
      description:
        "Which runs: gRPC, HTTP, or both and their ratio (journey: the transport of the backend calls); split (journey): one run, the gateway's share picks.",
      options: [...PROTOCOL_CHOICES],
      default: 'both',
    }),
    duration: durationFlag({
      char: 'd',
      description: `How long each run measures (${LIMITS.durationMs.min}ms to 10m; default 10s).`,
    }),
    warmup: durationFlag({description: 'Load before measuring, not counted (default: 10% of --duration, at most 1s).'}),
    concurrency: Flags.integer({
      char: 'c',
      helpValue: 'N',
      description: `Requests in flight (default ${LIMITS.concurrency.default}).`,
    }),
    connections: Flags.integer({
      helpValue: 'N',
      description:
        'Connections: REST default = --concurrency (one request at a time each); gRPC default = one channel per thread.',
    }),
    threads: Flags.integer({
      char: 't',
      helpValue: 'N',
      description: 'Load generator threads (default: half the CPUs, 1 to 4).',
    }),
    'max-requests': Flags.integer({
      char: 'n',
      helpValue: 'N',
      description: `Most requests measured per run (default ${LIMITS.maxRequests.default.toLocaleString('en-US')}).`,
    }),
    timeout: durationFlag({description: 'Deadline of each request (default 5s).'}),
    event: Flags.string({
      description: 'Event id of the join scenario (default: bench_<unix ms>, a fresh queue).',
      helpValue: 'ID',
    }),
    users: Flags.integer({
      helpValue: 'N',
      description: `Journey: distinct users, one token each, taken in turn (${LIMITS.users.min} to ${LIMITS.users.max.toLocaleString('en-US')}; default ${LIMITS.users.default}; builtin engine only). Waiting-room: people waiting per way (default ${LIMITS.waitingUsers.default.toLocaleString('en-US')}).`,
    }),
    mode: Flags.string({
      description: 'Waiting-room: how the people follow their place.',
      options: [...WAITING_MODE_CHOICES],
      default: 'all',
    }),
    'admit-rate': Flags.string({
      helpValue: 'PER_SECOND',
      description: `Waiting-room: admissions at the head per second (${LIMITS.admitRate.min} to ${LIMITS.admitRate.max}; default ${LIMITS.admitRate.default}; the gateway meters them too: QUEUE_ADMISSION_RATE).`,
    }),
    'redis-addr': Flags.string({
      helpValue: 'HOST:PORT',
      description: "Waiting-room: the gateway's Redis, whose CPU is read (default: the environment's REDIS_ADDRESS).",
    }),
    engine: Flags.string({
      description: 'Load generator: builtin, or h2load / wrk when installed.',
      options: [...ENGINES],
      default: 'builtin',
    }),
    'http-url': Flags.string({
      description: "The gateway's REST origin (default http://127.0.0.1:SERVER_PORT).",
      helpValue: 'URL',
    }),
    'grpc-addr': Flags.string({
      description: "The gateway's gRPC address (default 127.0.0.1:GRPC_PORT).",
      helpValue: 'HOST:PORT',
    }),
    env: envFlag,
    json: Flags.boolean({
      description: 'Print one JSON object: every run, the ratio, the generator CPU, the machine and the options.',
    }),
  };

  async run(): Promise<void> {
    const {flags} = await this.parse(Bench);
    if (flags.scenario === 'waiting-room') return this.waitingRoom(flags);
    const options = resolveBenchOptions({
      scenario: flags.scenario as (typeof SCENARIOS)[number],
      protocol: flags.protocol as (typeof PROTOCOL_CHOICES)[number],
      engine: flags.engine as (typeof ENGINES)[number],
      durationMs: flags.duration,
      warmupMs: flags.warmup,
      concurrency: flags.concurrency,
      connections: flags.connections,
      threads: flags.threads,
      maxRequests: flags['max-requests'],
      timeoutMs: flags.timeout,
      eventId: flags.event,
      users: flags.users,
      httpUrl: flags['http-url'],
      grpcAddress: flags['grpc-addr'],
      envName: flags.env,
    });
    const report = await whileInterruptible((signal) =>
      runBench(options, {signal, progress: process.stderr.isTTY ? terminalProgress(process.stderr) : undefined}),
    );
    this.log(
      flags.json
        ? JSON.stringify(report, null, 2)
        : formatReport(report, Boolean(process.stdout.isTTY) && !process.env.NO_COLOR),
    );
    if (report.interrupted) this.exit(INTERRUPTED_EXIT);
  }

  private async waitingRoom(flags: Awaited<ReturnType<Bench['parse']>>['flags']): Promise<void> {
    const options = resolveWaitingRoomOptions({
      mode: flags.mode as (typeof WAITING_MODE_CHOICES)[number],
      users: flags.users,
      durationMs: flags.duration,
      admitRatePerSecond: flags['admit-rate'] === undefined ? undefined : Number(flags['admit-rate']),
      threads: flags.threads,
      timeoutMs: flags.timeout,
      httpUrl: flags['http-url'],
      redisAddress: flags['redis-addr'],
      envName: flags.env,
    });
    const report = await whileInterruptible((signal) => runWaitingRoom(options, {signal}));
    this.log(
      flags.json
        ? JSON.stringify(report, null, 2)
        : formatWaitingRoomReport(report, Boolean(process.stdout.isTTY) && !process.env.NO_COLOR),
    );
    if (report.interrupted) this.exit(INTERRUPTED_EXIT);
  }
}

/** Ctrl-C ends the run under way, which then reports what it measured; a second Ctrl-C kills at once. */
async function whileInterruptible<T>(run: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const interrupt = new AbortController();
  const stop = () => interrupt.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    return await run(interrupt.signal);
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}
