import {availableParallelism} from 'node:os';
import {loadEnvironment} from '../config.js';
import type {Protocol} from '../backends/transports.js';
import {usageError} from '../errors.js';
import {readGatewayConfig} from '../gateway/config.js';
import {parseHostPort} from '../redis/client.js';
import {isLoopbackHost} from '../net.js';
import {requireTool} from './external-tool.js';
import type {WaitingRoomOptions} from './waiting-room.js';
import {WAITING_MODES} from './waiting-room-protocol.js';

export const SCENARIOS = ['join', 'journey', 'waiting-room'] as const;
/** The waiting-room scenario's ways to follow a place; all runs each in turn. */
export const WAITING_MODE_CHOICES = [...WAITING_MODES, 'all'] as const;
export const PROTOCOL_CHOICES = ['grpc', 'http', 'both', 'split'] as const;
export const ENGINES = ['builtin', 'h2load', 'wrk'] as const;

export type Scenario = (typeof SCENARIOS)[number];
export type ProtocolChoice = (typeof PROTOCOL_CHOICES)[number];
export type EngineName = (typeof ENGINES)[number];
/** The two sides a bench compares: the client's protocol (join) or the gateway's backend calls (journey). */
export type {Protocol};
/** What a run measures: one side of the comparison, or (journey) the gateway's own split of its backend calls. */
export type RunSide = Protocol | 'split';

/** What the user asked for; undefined means the default. Durations in ms. */
export interface BenchRequest {
  scenario: Scenario;
  protocol: ProtocolChoice;
  engine: EngineName;
  durationMs?: number;
  warmupMs?: number;
  concurrency?: number;
  connections?: number;
  threads?: number;
  maxRequests?: number;
  timeoutMs?: number;
  eventId?: string;
  users?: number;
  httpUrl?: string;
  grpcAddress?: string;
  envName?: string;
}

export interface BenchOptions {
  scenario: Scenario;
  protocol: ProtocolChoice;
  engine: EngineName;
  durationMs: number;
  warmupMs: number;
  concurrency: number;
  /** Undefined: the default of each run's protocol (see runShape). */
  connections?: number;
  threads: number;
  maxRequests: number;
  /** Per request: a request without an answer by then counts as TIMEOUT / DEADLINE_EXCEEDED. */
  timeoutMs: number;
  eventId: string;
  /** Journey: distinct users whose tokens the requests take in turn (request n: user n mod users). */
  users: number;
  /** The gateway's REST origin, e.g. http://127.0.0.1:8000. */
  httpOrigin: string;
  /** The gateway's gRPC address, host:port. */
  grpcAddress: string;
  envName?: string;
}

export const LIMITS = {
  durationMs: {min: 100, max: 600_000, default: 10_000},
  warmupMs: {max: 60_000, default: 1000},
  concurrency: {min: 1, max: 10_000, default: 50},
  threads: {min: 1, max: 64},
  maxRequests: {min: 1, max: 100_000_000, default: 5_000_000},
  timeoutMs: {min: 100, max: 60_000, default: 5000},
  users: {min: 1, max: 100_000, default: 1},
  waitingUsers: {default: 1000},
  admitRate: {min: 0.1, max: 100, default: 1},
} as const;

/** How often a polling waiting person asks for its status, as the web client does. */
const POLL_INTERVAL_MS = 2000;

export interface WaitingRoomRequest {
  mode: (typeof WAITING_MODE_CHOICES)[number];
  users?: number;
  durationMs?: number;
  admitRatePerSecond?: number;
  threads?: number;
  timeoutMs?: number;
  httpUrl?: string;
  redisAddress?: string;
  envName?: string;
}

/**
 * Checks the waiting-room request and finds its targets: the environment's gateway (or --http-url)
 * and its Redis (or --redis-addr), both on loopback.
 */
export function resolveWaitingRoomOptions(request: WaitingRoomRequest): WaitingRoomOptions {
  const users = inRange('--users', request.users ?? LIMITS.waitingUsers.default, LIMITS.users.min, LIMITS.users.max);
  const durationMs = durationFlag('--duration', request.durationMs, LIMITS.durationMs);
  const admitRatePerSecond = request.admitRatePerSecond ?? LIMITS.admitRate.default;
  if (!(admitRatePerSecond >= LIMITS.admitRate.min && admitRatePerSecond <= LIMITS.admitRate.max))
    throw usageError(
      `--admit-rate ${admitRatePerSecond} is out of range: from ${LIMITS.admitRate.min} to ${LIMITS.admitRate.max} admissions a second.`,
    );
  const threads = inRange('--threads', request.threads ?? 1, LIMITS.threads.min, LIMITS.threads.max);
  const timeoutMs = durationFlag('--timeout', request.timeoutMs, LIMITS.timeoutMs);
  const gateway =
    request.httpUrl === undefined || request.redisAddress === undefined
      ? readGatewayConfig(loadEnvironment({envName: request.envName}))
      : undefined;
  const httpOrigin = loopbackOrigin(request.httpUrl ?? `http://127.0.0.1:${gateway!.httpPort}`);
  const redis = gateway?.redis ?? {
    address: request.redisAddress!,
    database: 0,
    clusterMode: false,
    commandTimeoutMs: 1000,
  };
  if (request.redisAddress !== undefined) redis.address = request.redisAddress;
  for (const address of redis.address.split(','))
    if (!isLoopbackHost(parseHostPort(address).host)) refuseRemote('Redis', address);
  return {
    users,
    modes: request.mode === 'all' ? [...WAITING_MODES] : [request.mode],
    durationMs,
    admitRatePerSecond,
    pollIntervalMs: POLL_INTERVAL_MS,
    threads,
    timeoutMs,
    httpOrigin,
    redis,
    eventPrefix: `bench_wr_${Date.now()}`,
  };
}

const EVENT_ID = /^[A-Za-z0-9_.:-]{1,128}$/;

/**
 * Half the CPUs (at least 1, at most 4): the other half is left to the stack under test, which
 * runs on the same machine (loopback only).
 */
function defaultThreads(): number {
  return Math.min(4, Math.max(1, Math.floor(availableParallelism() / 2)));
}

/** A duration flag, checked against its limits, or its default. */
function durationFlag(
  flag: string,
  ms: number | undefined,
  limits: {min: number; max: number; default: number},
): number {
  return inRange(flag, ms ?? limits.default, limits.min, limits.max, formatMs);
}

/** Checks the request, fills the defaults and finds the targets (the active environment's gateway). */
export function resolveBenchOptions(request: BenchRequest): BenchOptions {
  const durationMs = durationFlag('--duration', request.durationMs, LIMITS.durationMs);
  const warmupMs = inRange(
    '--warmup',
    request.warmupMs ?? Math.min(LIMITS.warmupMs.default, Math.round(durationMs / 10)),
    0,
    LIMITS.warmupMs.max,
    formatMs,
  );
  const concurrency = inRange(
    '--concurrency',
    request.concurrency ?? LIMITS.concurrency.default,
    LIMITS.concurrency.min,
    LIMITS.concurrency.max,
  );
  const connections =
    request.connections === undefined ? undefined : inRange('--connections', request.connections, 1, concurrency);
  const threads = inRange('--threads', request.threads ?? defaultThreads(), LIMITS.threads.min, LIMITS.threads.max);
  const maxRequests = inRange(
    '--max-requests',
    request.maxRequests ?? LIMITS.maxRequests.default,
    LIMITS.maxRequests.min,
    LIMITS.maxRequests.max,
  );
  const timeoutMs = durationFlag('--timeout', request.timeoutMs, LIMITS.timeoutMs);
  const eventId = request.eventId ?? `bench_${Date.now()}`;
  if (!EVENT_ID.test(eventId))
    throw usageError(`--event "${eventId}" is not an event id: use 1-128 letters, digits, _ . : or -.`);
  const users = inRange('--users', request.users ?? LIMITS.users.default, LIMITS.users.min, LIMITS.users.max);
  if (request.scenario === 'join' && request.protocol === 'split') {
    throw usageError(
      '--protocol split is for the journey scenario: it lets the gateway split its backend calls; join has none.',
      'Use --scenario journey --protocol split, or --protocol grpc, http or both with join.',
    );
  }
  if (request.scenario === 'join' && users > 1) {
    throw usageError(
      '--users is for the journey scenario: join already sends a new user id with every request.',
      'Drop --users, or use --scenario journey.',
    );
  }
  if (request.engine !== 'builtin' && users > 1) {
    throw usageError(
      `${request.engine} sends the same headers with every request, so it cannot take turns between ${users} users' tokens.`,
      'Use --engine builtin with --users, or drop --users.',
    );
  }
  const grpcClientRuns = request.scenario === 'join' && request.protocol !== 'http';
  if (request.engine === 'wrk' && grpcClientRuns) {
    throw usageError(
      'wrk has no gRPC: it cannot run join over gRPC.',
      'Use --engine h2load for gRPC, or --protocol http with wrk.',
    );
  }
  if (request.engine !== 'builtin') requireTool(request.engine);
  if (request.engine === 'h2load' && request.maxRequests !== undefined) {
    throw usageError(
      'h2load cannot stop at a request count in a timed run (it ignores -n with -D).',
      'Drop --max-requests (the run is bounded by --duration), or use --engine builtin or wrk.',
    );
  }

  let httpUrl = request.httpUrl;
  let grpcAddress = request.grpcAddress;
  if (httpUrl === undefined || grpcAddress === undefined) {
    const gateway = readGatewayConfig(loadEnvironment({envName: request.envName}));
    httpUrl ??= `http://127.0.0.1:${gateway.httpPort}`;
    if (grpcAddress === undefined) {
      if (gateway.grpcTls && grpcClientRuns) {
        throw usageError(
          'The gateway of this environment serves gRPC over TLS (GRPC_USE_TLS=true); tacos bench speaks plaintext gRPC on loopback.',
          'Bench a gateway without TLS, or use --protocol http.',
        );
      }
      grpcAddress = `127.0.0.1:${gateway.grpcPort}`;
    }
  }
  return {
    scenario: request.scenario,
    protocol: request.protocol,
    engine: request.engine,
    durationMs,
    warmupMs,
    concurrency,
    connections,
    threads,
    maxRequests,
    timeoutMs,
    eventId,
    users,
    httpOrigin: loopbackOrigin(httpUrl),
    grpcAddress: loopbackAddress(grpcAddress),
    envName: request.envName,
  };
}

/** The share of the load each side of a run gets: threads, connections (channels for gRPC) and requests in flight. */
export interface RunShape {
  threads: number;
  connections: number;
  concurrency: number;
}

/**
 * HTTP/1.1 carries one request at a time per connection, so REST gets a connection per request in
 * flight; gRPC multiplexes, so it gets one channel per thread with many streams each.
 */
export function runShape(options: BenchOptions, client: Protocol): RunShape {
  const concurrency = options.concurrency;
  const connections = Math.min(
    concurrency,
    options.connections ?? (client === 'http' ? concurrency : Math.min(options.threads, concurrency)),
  );
  return {threads: Math.min(options.threads, connections), connections, concurrency};
}

/** `count` split into `parts` shares that differ by at most one. */
export function shareOf(count: number, parts: number, index: number): number {
  return Math.floor(count / parts) + (index < count % parts ? 1 : 0);
}

function refuseRemote(what: string, value: string): never {
  throw usageError(
    `${what} ${value} is not on this machine: tacos bench sends load to loopback addresses only (127.0.0.1, ::1, localhost).`,
    'Run the stack locally (tacos up) and bench it there.',
  );
}

function loopbackOrigin(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw usageError(`--http-url "${text}" is not a URL such as http://127.0.0.1:8000.`);
  }
  if (url.protocol !== 'http:')
    throw usageError(`--http-url "${text}" is not an http:// URL (the gateway's REST port speaks plain HTTP).`);
  if (!isLoopbackHost(url.hostname)) refuseRemote('The REST target', url.origin);
  return url.origin;
}

function loopbackAddress(text: string): string {
  const match = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(text);
  if (!match || Number(match[2]) < 1 || Number(match[2]) > 65_535)
    throw usageError(`--grpc-addr "${text}" is not HOST:PORT, such as 127.0.0.1:9090.`);
  if (!isLoopbackHost(match[1])) refuseRemote('The gRPC target', text);
  return text;
}

function inRange(flag: string, value: number, min: number, max: number, show: (n: number) => string = String): number {
  if (!Number.isInteger(value) || value < min || value > max)
    throw usageError(`${flag} ${show(value)} is out of range: from ${show(min)} to ${show(max)}.`);
  return value;
}

export function formatMs(ms: number): string {
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms >= 1000 && ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
