/**
 * A throwaway project for end-to-end tests of `tacos up`, `status`, `logs`, `down` and `doctor`: a
 * temporary dir with a `.env.local` that gives every service of the stack a free loopback port
 * (never the default ports a developer's own stack may hold), a runner of `node bin/run.js` in that
 * dir with a clean environment, and the means to prove that nothing is left behind (no process, no
 * listening port) and to clean up whatever a failing test left.
 */
import {existsSync, readFileSync, readdirSync, readlinkSync} from 'node:fs';
import {mkdtemp, readFile, realpath, rm, writeFile} from 'node:fs/promises';
import {createServer} from 'node:net';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {execa, type ResultPromise} from 'execa';
import {expect} from 'vitest';
import {BIN, type CliResult} from './cli.js';
import {freePort} from './redis.js';

/** Variables of the caller's environment that would override the project's env file (the process environment wins). */
const STACK_VARIABLE =
  /^(SERVER_|GRPC_|GATEWAY_|RESERVATION_|PAYMENT_|REDIS_|BACKEND_|QUEUE_|JWT_|DEV_BYPASS|WEBHOOK_|CORS_|TACOS_|LOG_LEVEL$|NO_COLOR$|FORCE_COLOR$)/;

/** The caller's environment without anything that configures the stack. */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env))
    if (value !== undefined && !STACK_VARIABLE.test(key)) env[key] = value;
  return {...env, ...extra};
}

export interface StackPorts {
  server: number;
  grpc: number;
  reservationHttp: number;
  reservationGrpc: number;
  paymentHttp: number;
  paymentGrpc: number;
  redis: number;
  /** Where the env file points the gateway's backends: closed ports, unless a test listens there. */
  backendReservationHttp: number;
  backendReservationGrpc: number;
  backendPaymentHttp: number;
  backendPaymentGrpc: number;
}

/** Distinct free loopback ports. */
export async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

export interface ProjectOptions {
  grpcEnabled?: boolean;
  /** Instead of a free port nobody answers on (so that `up` starts its own redis-server). */
  redisAddress?: string;
  /** More lines of the env file. */
  extra?: Record<string, string>;
}

export interface Foreground {
  child: ResultPromise;
  pid: number;
  stdout(): string;
  stderr(): string;
  /** Resolves once stdout matches, rejects after timeoutMs or when the process exits first. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
  exited: Promise<{code: number | null; signal: NodeJS.Signals | null}>;
  /** SIGKILL if still running; safe twice. */
  kill(): void;
}

export class Project {
  /** Processes seen during the test (services, supervisors, their children) by pid and start time: killed by dispose() if still there. */
  private readonly tracked = new Map<number, string | undefined>();
  private readonly foregrounds: Foreground[] = [];

  constructor(
    readonly dir: string,
    readonly ports: StackPorts,
  ) {}

  get stateDir(): string {
    return path.join(this.dir, '.tacos');
  }

  get stateFile(): string {
    return path.join(this.stateDir, 'state.json');
  }

  /** The ports the stack listens on (Redis's only when it is ours). */
  stackPorts(
    options: {grpc?: boolean; redis?: boolean; mocks?: boolean} = {},
  ): Array<{port: number; variable: string}> {
    const {grpc = true, redis = true, mocks = true} = options;
    return [
      {port: this.ports.server, variable: 'SERVER_PORT'},
      ...(grpc ? [{port: this.ports.grpc, variable: 'GRPC_PORT'}] : []),
      ...(mocks
        ? [
            {port: this.ports.reservationHttp, variable: 'RESERVATION_HTTP_PORT'},
            {port: this.ports.reservationGrpc, variable: 'RESERVATION_GRPC_PORT'},
            {port: this.ports.paymentHttp, variable: 'PAYMENT_HTTP_PORT'},
            {port: this.ports.paymentGrpc, variable: 'PAYMENT_GRPC_PORT'},
          ]
        : []),
      ...(redis ? [{port: this.ports.redis, variable: 'REDIS_ADDRESS'}] : []),
    ];
  }

  /** `tacos ARGS` in the project dir, as a user runs it; bounded by timeoutMs. */
  async run(args: string[], options: {env?: Record<string, string>; timeoutMs?: number} = {}): Promise<CliResult> {
    const timeoutMs = options.timeoutMs ?? 30_000;
    const result = await execa(process.execPath, [BIN, ...args], {
      cwd: this.dir,
      env: cleanEnv(options.env),
      extendEnv: false,
      input: '',
      timeout: timeoutMs,
      killSignal: 'SIGKILL',
      reject: false,
      stripFinalNewline: false,
    });
    if (result.timedOut)
      throw new Error(
        `tacos ${args.join(' ')} did not finish within ${timeoutMs} ms\nstdout: ${result.stdout}\nstderr: ${result.stderr}`,
      );
    return {code: result.exitCode ?? null, stdout: result.stdout, stderr: result.stderr};
  }

  /** `tacos up ARGS` in the foreground (stdout is a pipe, not a TTY). */
  startUp(args: string[] = [], options: {env?: Record<string, string>} = {}): Foreground {
    return this.start(['up', ...args], options);
  }

  /** A long-running `tacos ARGS` (up in the foreground, logs -f), killed by dispose() if still running. */
  start(args: string[], options: {env?: Record<string, string>} = {}): Foreground {
    // The tests send their own signals: no SIGKILL follows a SIGTERM unasked.
    const child = execa(process.execPath, [BIN, ...args], {
      cwd: this.dir,
      env: cleanEnv(options.env),
      extendEnv: false,
      stdin: 'ignore',
      buffer: false,
      reject: false,
      forceKillAfterDelay: false,
    });
    let stdout = '';
    let stderr = '';
    const waiters = new Set<() => void>();
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      for (const waiter of waiters) waiter();
    });
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const exited = child.then((result) => ({code: result.exitCode ?? null, signal: result.signal ?? null}));
    if (child.pid) this.track([child.pid]);
    const up: Foreground = {
      child,
      pid: child.pid!,
      stdout: () => stdout,
      stderr: () => stderr,
      exited,
      kill: () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      },
      waitFor: (pattern, timeoutMs = 30_000) =>
        new Promise<void>((resolve, reject) => {
          let finished = false;
          const done = (error?: Error) => {
            if (finished) return;
            finished = true;
            waiters.delete(check);
            clearTimeout(timer);
            if (error) reject(error);
            else resolve();
          };
          const check = () => {
            if (pattern.test(stdout)) done();
          };
          const timer = setTimeout(
            () =>
              done(
                new Error(
                  `tacos ${args.join(' ')}: stdout did not match ${pattern} within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`,
                ),
              ),
            timeoutMs,
          );
          waiters.add(check);
          check();
          void exited.then(({code, signal}) => {
            check();
            done(
              new Error(
                `tacos ${args.join(' ')} exited (code ${code}, signal ${signal}) before stdout matched ${pattern}\nstdout: ${stdout}\nstderr: ${stderr}`,
              ),
            );
          });
        }),
    };
    this.foregrounds.push(up);
    return up;
  }

  /** state.json as written by the stack, or undefined. */
  state(): StackStateFile | undefined {
    try {
      return JSON.parse(readFileSync(this.stateFile, 'utf8')) as StackStateFile;
    } catch {
      return undefined;
    }
  }

  /** Every process of the running stack: the supervisor, the services and whatever they started. */
  stackProcesses(): number[] {
    const state = this.state();
    if (!state) return [];
    const roots = [
      state.supervisor.pid,
      ...state.services.flatMap((service) => (service.process ? [service.process.pid] : [])),
    ];
    const all = new Set<number>();
    for (const root of roots) {
      if (isGone(root)) continue;
      all.add(root);
      for (const pid of descendants(root)) all.add(pid);
    }
    for (const pid of processesIn(this.dir)) all.add(pid);
    this.track([...all]);
    return [...all];
  }

  /** Remembers these processes (pid and start time) for dispose(). */
  track(pids: number[]): void {
    for (const pid of pids) if (!this.tracked.has(pid)) this.tracked.set(pid, startTimeOf(pid));
  }

  /** `down` if a stack still runs, then SIGKILL to anything left (tracked or running in the dir), and the dir removed. Safe twice. */
  async dispose(): Promise<void> {
    for (const up of this.foregrounds) up.kill();
    if (existsSync(this.dir)) {
      this.stackProcesses();
      if (this.state()) await this.run(['down'], {timeoutMs: 40_000}).catch(() => undefined);
    }
    // Only the very processes seen: a pid of one that exited may belong to another program by now.
    const leftovers = new Set([
      ...[...this.tracked]
        .filter(([pid, started]) => started !== undefined && startTimeOf(pid) === started)
        .map(([pid]) => pid),
      ...(existsSync(this.dir) ? processesIn(this.dir) : []),
    ]);
    for (const pid of leftovers) {
      if (pid === process.pid || isGone(pid)) continue;
      for (const target of [-pid, pid]) {
        try {
          process.kill(target, 'SIGKILL');
        } catch {
          // Not a group leader, or gone.
        }
      }
    }
    await rm(this.dir, {recursive: true, force: true});
  }
}

export interface StackStateFile {
  supervisor: {pid: number; startTime: string};
  env: string;
  startedAt: string;
  detached: boolean;
  services: Array<{
    name: string;
    state: string;
    process?: {pid: number; startTime: string};
    urls: string[];
    ports: number[];
    logFile?: string;
    restarts: number;
  }>;
}

/** A temporary project whose `.env.local` puts every service on a free loopback port. */
export async function createProject(options: ProjectOptions = {}): Promise<Project> {
  // The real path: the one processes see as their working directory.
  const dir = await realpath(await mkdtemp(path.join(tmpdir(), 'tacos-up-')));
  const [
    server,
    grpc,
    reservationHttp,
    reservationGrpc,
    paymentHttp,
    paymentGrpc,
    redis,
    backendReservationHttp,
    backendReservationGrpc,
    backendPaymentHttp,
    backendPaymentGrpc,
  ] = await freePorts(11);
  const ports: StackPorts = {
    server,
    grpc,
    reservationHttp,
    reservationGrpc,
    paymentHttp,
    paymentGrpc,
    redis,
    backendReservationHttp,
    backendReservationGrpc,
    backendPaymentHttp,
    backendPaymentGrpc,
  };
  const lines: Record<string, string> = {
    SERVER_HOST: '127.0.0.1',
    SERVER_PORT: String(server),
    GRPC_ENABLED: String(options.grpcEnabled ?? true),
    GRPC_PORT: String(grpc),
    RESERVATION_HTTP_PORT: String(reservationHttp),
    RESERVATION_GRPC_PORT: String(reservationGrpc),
    PAYMENT_HTTP_PORT: String(paymentHttp),
    PAYMENT_GRPC_PORT: String(paymentGrpc),
    REDIS_ADDRESS: options.redisAddress ?? `127.0.0.1:${redis}`,
    // The backends of the env (used by --no-mocks and --only): ports nobody listens on, never a
    // developer's running mocks. The stack's own mocks replace them otherwise.
    BACKEND_RESERVATION_GRPC_ADDRESS: `127.0.0.1:${backendReservationGrpc}`,
    BACKEND_RESERVATION_API_BASE_URL: `http://127.0.0.1:${backendReservationHttp}`,
    BACKEND_PAYMENT_GRPC_ADDRESS: `127.0.0.1:${backendPaymentGrpc}`,
    BACKEND_PAYMENT_API_BASE_URL: `http://127.0.0.1:${backendPaymentHttp}`,
    LOG_LEVEL: 'info',
    ...options.extra,
  };
  await writeFile(
    path.join(dir, '.env.local'),
    `${Object.entries(lines)
      .map(([key, value]) => `${key}=${value}`)
      .join('\n')}\n`,
  );
  return new Project(dir, ports);
}

/** The process has exited: no /proc entry, or a zombie nobody has reaped yet. */
export function isGone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] === 'Z';
  } catch {
    return true;
  }
}

/** The kernel's start time of a live process (undefined when gone or a zombie): with the pid, it names one process for good. */
export function startTimeOf(pid: number): string | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = fields.slice(fields.lastIndexOf(')') + 2).split(' ');
    return rest[0] === 'Z' ? undefined : rest[19];
  } catch {
    return undefined;
  }
}

/** Live pids still running, of these. */
export function alive(pids: number[]): number[] {
  return pids.filter((pid) => !isGone(pid));
}

/** Every process below root in the process tree, now. */
export function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // Exited while we looked.
    }
  }
  const found: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    for (const child of children.get(queue.shift()!) ?? []) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}

/** Live processes whose working directory is dir or below it (everything `up` starts there inherits it). */
export function processesIn(dir: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cwd = readlinkSync(`/proc/${entry}/cwd`);
      if ((cwd === dir || cwd.startsWith(`${dir}/`)) && !isGone(Number(entry))) found.push(Number(entry));
    } catch {
      // Another user's process, or gone.
    }
  }
  return found;
}

/** A server can listen on the port on 127.0.0.1 again (nothing holds it). */
export function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({port, host: '127.0.0.1', exclusive: true}, () => server.close(() => resolve(true)));
  });
}

/** The ports of these that something still holds. */
export async function heldPorts(ports: number[]): Promise<number[]> {
  const held: number[] = [];
  for (const port of ports) if (!(await canBind(port))) held.push(port);
  return held;
}

/** Polls check every everyMs until it returns something other than undefined; throws after timeoutMs. */
export async function until<T>(
  what: string,
  check: () => T | undefined | Promise<T | undefined>,
  timeoutMs: number,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** Resolves once none of pids runs; throws naming those still running after timeoutMs. */
export async function allGone(pids: number[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (alive(pids).length > 0) {
    if (Date.now() > deadline)
      throw new Error(`still running after ${timeoutMs} ms: ${alive(pids).map(describeProcess).join('; ')}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** pid and command line, for a message. */
export function describeProcess(pid: number): string {
  try {
    return `${pid} (${readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ')})`;
  } catch {
    return String(pid);
  }
}

/** A file's text, or '' when it is missing. */
export async function readText(file: string): Promise<string> {
  return readFile(file, 'utf8').catch(() => '');
}

/** `tacos down`, which must say what it stopped; the supervisor's log in the message when it does not. */
export async function down(p: Project, expected: RegExp): Promise<void> {
  const result = await p.run(['down']);
  const log = await readText(path.join(p.stateDir, 'logs', 'supervisor.log'));
  expect(result.code, `down: ${result.stdout}${result.stderr}\nsupervisor.log: ${log}`).toBe(0);
  expect(result.stdout, `down: ${result.stderr}\nsupervisor.log: ${log}`).toMatch(expected);
}

/** Asserts that nothing of the stack runs and none of its ports is held. */
export async function expectNothingLeft(p: Project, pids: number[], ports: number[]): Promise<void> {
  expect(alive(pids).map(describeProcess), 'processes of the stack still running').toEqual([]);
  expect(processesIn(p.dir).map(describeProcess), 'processes still running in the project dir').toEqual([]);
  expect(await heldPorts(ports), 'ports still held').toEqual([]);
}
