import path from 'node:path';
import {execaSync} from 'execa';
import {EnvReader, type Environment} from '../config.js';
import {TacosError, usageError} from '../errors.js';
import {checkClosedByDefault, readGatewayConfig} from '../gateway/config.js';
import {PACKAGE_ROOT} from '../paths.js';
import {parseHostPort} from '../redis/client.js';
import {tcpOpen} from '../net.js';
import {grpcServing, httpOk, readyProbe, redisAnswers} from './probes.js';
import {BUILTIN_DEPENDS, BUILTIN_SERVICES, type ReadyCheck, type UserService} from './stack-file.js';
import type {ServiceName} from './state.js';

export const SERVICE_ORDER: ServiceName[] = BUILTIN_SERVICES;

export interface StackOptions {
  envName?: string;
  /** Only these services; the others are taken as already running elsewhere. */
  only?: ServiceName[];
  mocks: boolean;
  /** A shell command run in place of our gateway, with the same readiness probe. */
  gatewayCommand?: string;
  /** The stack file's services: added to the stack, or run in place of the built-in of the same name. */
  userServices?: UserService[];
  stateDir: string;
}

export interface ServiceSpec {
  name: ServiceName;
  /** Undefined for a Redis that already answers: reused, never stopped by us. */
  command?: {file: string; args: string[]; shell: boolean};
  /** Where the command runs (default: the current dir). */
  cwd?: string;
  env: Record<string, string>;
  /** Ports the service will listen on, with the variable (or stack file entry) that sets each. */
  ports: Array<{port: number; variable: string}>;
  urls: string[];
  dependsOn: ServiceName[];
  ready: () => Promise<boolean>;
  /** Ready once a line of its output matches (the stack file's `ready: {log}`), instead of `ready`. */
  readyOnLog?: RegExp;
  readyTimeoutMs?: number;
  /** The stack file's check, kept in the state so that `tacos status` probes what the user named. */
  check?: ReadyCheck;
}

const BIN = path.join(PACKAGE_ROOT, 'bin', 'run.js');
// The names a redis-server started by `up` answers on (not net.ts's isLoopbackHost: 127.0.0.2 is loopback too, but that server does not listen there).
const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '::1']);

/** What `tacos up` will run, from the environment and the stack file: each service, its ports, URLs and readiness probe. */
export async function planStack(options: StackOptions, env: Environment): Promise<ServiceSpec[]> {
  const read = new EnvReader(env);
  const gateway = readGatewayConfig(env);
  const users = new Map((options.userServices ?? []).map((service) => [service.name, service]));
  const known = [...SERVICE_ORDER, ...users.keys()];
  const unknown = options.only?.filter((name) => !known.includes(name));
  if (unknown?.length)
    throw usageError(`--only: no service ${unknown.join(', ')}.`, `The services are ${known.join(', ')}.`);
  const isMock = (name: ServiceName) => name === 'reservation' || name === 'payment';
  // A stack file's service runs unless --only leaves it out (--no-mocks leaves out our mocks, not yours).
  const wanted = (name: ServiceName) =>
    options.only ? options.only.includes(name) : options.mocks || !isMock(name) || users.has(name);
  // Our gateway would refuse these settings once started: say so before anything runs.
  if (wanted('gateway') && !options.gatewayCommand) checkClosedByDefault(gateway);
  const envArgs = options.envName ? ['--env', options.envName] : [];
  const tacos = (...args: string[]) => ({file: process.execPath, args: [BIN, ...args, ...envArgs], shell: false});
  const specs: ServiceSpec[] = [];

  // A replaced Redis is the user's to start: no probe of ours decides whether to reuse one.
  if (wanted('redis'))
    specs.push(
      users.has('redis')
        ? redisAt(gateway.redis.address, gateway.redis.password)
        : await redisSpec(gateway.redis.address, gateway.redis.password, gateway.redis.clusterMode, options.stateDir),
    );

  const mockAddresses: Record<string, string> = {};
  for (const name of ['reservation', 'payment'] as const) {
    if (!wanted(name)) continue;
    const prefix = name.toUpperCase();
    const httpPort = read.port(`${prefix}_HTTP_PORT`, name === 'reservation' ? 8010 : 8030);
    const grpcPort = read.port(`${prefix}_GRPC_PORT`, name === 'reservation' ? 8011 : 8031);
    mockAddresses[`BACKEND_${prefix}_GRPC_ADDRESS`] = `127.0.0.1:${grpcPort}`;
    mockAddresses[`BACKEND_${prefix}_API_BASE_URL`] = `http://127.0.0.1:${httpPort}`;
    specs.push({
      name,
      command: tacos('serve', name),
      // The mocks publish the changes they make on their own (a hold lapsing) for the gateway's update streams.
      env: {MOCK_PUBLISH_UPDATES: String(read.bool('MOCK_PUBLISH_UPDATES', true))},
      ports: [
        {port: httpPort, variable: `${prefix}_HTTP_PORT`},
        {port: grpcPort, variable: `${prefix}_GRPC_PORT`},
      ],
      urls: [`http://127.0.0.1:${httpPort}`, `grpc://127.0.0.1:${grpcPort}`],
      dependsOn: [],
      ready: () => grpcServing(`127.0.0.1:${grpcPort}`),
    });
  }

  if (wanted('gateway')) {
    const grpcAddress = `127.0.0.1:${gateway.grpcPort}`;
    specs.push({
      name: 'gateway',
      // Another gateway runs under a watcher that stops its whole process tree with the stack.
      command: options.gatewayCommand ? watched(options.gatewayCommand) : tacos('serve', 'gateway'),
      // The gateway talks to the mocks this stack runs (unless --no-mocks: the env's addresses). Our
      // gateway reads the env file itself; another one (--gateway-cmd) gets its values, as compose does.
      env: options.gatewayCommand ? {...definedValues(env), ...mockAddresses} : mockAddresses,
      ports: [
        {port: gateway.httpPort, variable: 'SERVER_PORT'},
        ...(gateway.grpcEnabled ? [{port: gateway.grpcPort, variable: 'GRPC_PORT'}] : []),
      ],
      urls: [`http://127.0.0.1:${gateway.httpPort}`, ...(gateway.grpcEnabled ? [`grpc://${grpcAddress}`] : [])],
      // It needs Redis to be ready; the backends it calls only when asked (and its breaker copes),
      // so it starts alongside the mocks.
      dependsOn: BUILTIN_DEPENDS.gateway,
      ready: async () =>
        (await httpOk(`http://127.0.0.1:${gateway.httpPort}/readyz`)) &&
        (!gateway.grpcEnabled || (await grpcServing(grpcAddress))),
    });
  }

  const stackEnv = {...definedValues(env), ...mockAddresses};
  for (const user of users.values()) {
    if (!wanted(user.name)) continue;
    const index = specs.findIndex((spec) => spec.name === user.name);
    const spec = userSpec(user, stackEnv, index === -1 ? undefined : specs[index]);
    if (index === -1) specs.push(spec);
    else specs[index] = spec;
  }
  return specs;
}

/**
 * A stack file's service. In place of a built-in it keeps that one's ports (the gateway is pointed
 * there), URLs and probe unless it names its own check. It runs under a watcher (`serve command`),
 * so that it stops with the stack even when `up` is killed: a user's program does not watch stdin.
 */
function userSpec(user: UserService, stackEnv: Record<string, string>, builtin: ServiceSpec | undefined): ServiceSpec {
  const line = typeof user.command === 'string' ? user.command : user.command.map(shellQuote).join(' ');
  const ports = [
    ...(builtin?.ports ?? []),
    ...user.ports
      .filter((port) => !builtin?.ports.some((taken) => taken.port === port))
      .map((port) => ({port, variable: 'ports in the stack file'})),
  ];
  const ready = user.ready ? readyProbe(user.ready) : (builtin?.ready ?? allOpen(user.ports));
  return {
    name: user.name,
    command: watched(line),
    cwd: user.cwd,
    env: {...stackEnv, ...(builtin?.env ?? {}), ...user.env},
    ports,
    urls: builtin?.urls ?? checkUrls(user),
    dependsOn: user.dependsOn,
    ready,
    readyOnLog: user.ready && 'log' in user.ready ? new RegExp(user.ready.log) : undefined,
    readyTimeoutMs: user.readyTimeoutMs,
    check: user.ready,
  };
}

function watched(line: string): ServiceSpec['command'] {
  return {file: process.execPath, args: [BIN, 'serve', 'command', '--run', line], shell: false};
}

/** An argument as /bin/sh reads it back unchanged. */
function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}

/** Without a check: ready once every port it declares accepts connections (at once when it declares none). */
function allOpen(ports: number[]): () => Promise<boolean> {
  return async () => (await Promise.all(ports.map((port) => tcpOpen('127.0.0.1', port)))).every(Boolean);
}

/** What `tacos status` shows for a new service: where its check looks, else its ports. */
function checkUrls(user: UserService): string[] {
  if (user.ready && 'http' in user.ready) return [user.ready.http];
  if (user.ready && 'grpc' in user.ready) return [`grpc://${user.ready.grpc}`];
  if (user.ready && 'tcp' in user.ready) return [`tcp://${user.ready.tcp}`];
  return user.ports.map((port) => `tcp://127.0.0.1:${port}`);
}

function definedValues(env: Environment): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined));
}

/** Redis at the address, probed with PING; whoever starts it listens on its port. */
function redisAt(address: string, password: string | undefined): ServiceSpec {
  const {host, port} = parseHostPort(address.split(',')[0]);
  return {
    name: 'redis',
    env: {},
    urls: [`redis://${host}:${port}`],
    ports: [{port, variable: 'REDIS_ADDRESS'}],
    dependsOn: [],
    ready: () => redisAnswers(host, port, password),
  };
}

async function redisSpec(
  address: string,
  password: string | undefined,
  clusterMode: boolean,
  stateDir: string,
): Promise<ServiceSpec> {
  const {host, port} = parseHostPort(address.split(',')[0]);
  const base = redisAt(address, password);
  // One that already answers is reused: no port of ours to check.
  if (await base.ready()) return {...base, ports: []};
  const installed = hasRedisServer();
  if (clusterMode || !LOCAL_HOSTS.has(host) || !installed) {
    throw new TacosError(`No Redis answers at ${address}${installed ? '' : ', and redis-server is not installed'}.`, {
      hint: clusterMode
        ? 'Start the Redis Cluster named by REDIS_ADDRESS first (tacos up starts a single local Redis only).'
        : `Install it (Debian: apt-get install -y redis-server), or point REDIS_ADDRESS at a running Redis.`,
      code: 'REDIS_MISSING',
    });
  }
  return {
    ...base,
    command: {
      file: process.execPath,
      args: [BIN, 'serve', 'redis', '--port', String(port), '--dir', path.join(stateDir, 'redis')],
      shell: false,
    },
  };
}

export function hasRedisServer(): boolean {
  return !execaSync('redis-server', ['--version'], {stdio: 'ignore', reject: false}).failed;
}
