import {execFileSync} from 'node:child_process';
import path from 'node:path';
import {EnvReader, type Environment} from '../config.js';
import {TacosError} from '../errors.js';
import {readGatewayConfig} from '../gateway/config.js';
import {PACKAGE_ROOT} from '../paths.js';
import {parseHostPort} from '../redis/client.js';
import {grpcServing, httpOk, redisAnswers} from './probes.js';
import type {ServiceName} from './state.js';

export const SERVICE_ORDER: ServiceName[] = ['redis', 'reservation', 'payment', 'gateway'];

export interface StackOptions {
  envName?: string;
  /** Only these services; the others are taken as already running elsewhere. */
  only?: ServiceName[];
  mocks: boolean;
  /** A shell command run in place of our gateway, with the same readiness probe. */
  gatewayCommand?: string;
  stateDir: string;
}

export interface ServiceSpec {
  name: ServiceName;
  /** Undefined for a Redis that already answers: reused, never stopped by us. */
  command?: {file: string; args: string[]; shell: boolean};
  env: Record<string, string>;
  /** Ports the service will listen on, with the variable that sets each. */
  ports: Array<{port: number; variable: string}>;
  urls: string[];
  dependsOn: ServiceName[];
  ready: () => Promise<boolean>;
}

const BIN = path.join(PACKAGE_ROOT, 'bin', 'run.js');
// The names a redis-server started by `up` answers on (not net.ts's isLoopbackHost: 127.0.0.2 is loopback too, but that server does not listen there).
const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '::1']);

/** What `tacos up` will run, from the environment: each service, its ports, URLs and readiness probe. */
export async function planStack(options: StackOptions, env: Environment): Promise<ServiceSpec[]> {
  const read = new EnvReader(env);
  const gateway = readGatewayConfig(env);
  const isMock = (name: ServiceName) => name === 'reservation' || name === 'payment';
  const wanted = (name: ServiceName) => (options.only ? options.only.includes(name) : options.mocks || !isMock(name));
  const envArgs = options.envName ? ['--env', options.envName] : [];
  const tacos = (...args: string[]) => ({file: process.execPath, args: [BIN, ...args, ...envArgs], shell: false});
  const specs: ServiceSpec[] = [];

  if (wanted('redis')) specs.push(await redisSpec(gateway.redis.address, gateway.redis.password, gateway.redis.clusterMode, options.stateDir));

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
      env: {},
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
      command: options.gatewayCommand ? {file: process.execPath, args: [BIN, 'serve', 'command', '--run', options.gatewayCommand], shell: false} : tacos('serve', 'gateway'),
      // The gateway talks to the mocks this stack runs (unless --no-mocks: the env's addresses). Our
      // gateway reads the env file itself; another one (--gateway-cmd) gets its values, as compose does.
      env: options.gatewayCommand ? {...definedValues(env), ...mockAddresses} : mockAddresses,
      ports: [{port: gateway.httpPort, variable: 'SERVER_PORT'}, ...(gateway.grpcEnabled ? [{port: gateway.grpcPort, variable: 'GRPC_PORT'}] : [])],
      urls: [`http://127.0.0.1:${gateway.httpPort}`, ...(gateway.grpcEnabled ? [`grpc://${grpcAddress}`] : [])],
      // It needs Redis to be ready; the backends it calls only when asked (and its breaker copes),
      // so it starts alongside the mocks.
      dependsOn: ['redis'],
      ready: async () => (await httpOk(`http://127.0.0.1:${gateway.httpPort}/readyz`)) && (!gateway.grpcEnabled || (await grpcServing(grpcAddress))),
    });
  }
  return specs;
}

function definedValues(env: Environment): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined));
}

async function redisSpec(address: string, password: string | undefined, clusterMode: boolean, stateDir: string): Promise<ServiceSpec> {
  const seed = address.split(',')[0];
  const {host, port} = parseHostPort(seed);
  const ready = () => redisAnswers(host, port, password);
  const base = {name: 'redis' as const, env: {}, urls: [`redis://${host}:${port}`], dependsOn: []};
  if (await ready()) return {...base, ports: [], ready};
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
    command: {file: process.execPath, args: [BIN, 'serve', 'redis', '--port', String(port), '--dir', path.join(stateDir, 'redis')], shell: false},
    ports: [{port, variable: 'REDIS_ADDRESS'}],
    ready,
  };
}

export function hasRedisServer(): boolean {
  try {
    execFileSync('redis-server', ['--version'], {stdio: 'ignore'});
    return true;
  } catch {
    return false;
  }
}
