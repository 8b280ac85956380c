import {createWriteStream, type WriteStream} from 'node:fs';
import {mkdir} from 'node:fs/promises';
import {createServer} from 'node:net';
import path from 'node:path';
import {setTimeout as sleep} from 'node:timers/promises';
import {execa, type ResultPromise} from 'execa';
import {Listr} from 'listr2';
import {TacosError} from '../errors.js';
import {WATCH_PARENT_ENV} from '../signals.js';
import type {ServiceSpec} from './plan.js';
import {portOwner} from '../proc.js';
import {waitUntil} from './probes.js';
import {
  identify,
  removeState,
  signalGroup,
  writeState,
  type ServiceName,
  type ServiceState,
  type StackState,
} from './state.js';

export interface SupervisorOptions {
  specs: ServiceSpec[];
  stateDir: string;
  envName: string;
  detached: boolean;
  restartOnFailure: boolean;
  maxRestarts: number;
  /** SIGTERM, then SIGKILL after this. */
  graceMs: number;
  readyTimeoutMs: number;
  renderer: 'default' | 'simple' | 'silent';
}

const LAST_LINES = 20;

/** One service of the stack: its process, its log file, its last lines. */
class ServiceRun {
  child?: ResultPromise;
  exited?: Promise<{code: number | null; signal: NodeJS.Signals | null}>;
  readonly lastLines: string[] = [];
  /** A line of this start's output matched the service's log readiness check. */
  logMatched = false;
  state: ServiceState;
  echo?: (service: ServiceName, line: string) => void;
  private log?: WriteStream;

  constructor(
    readonly spec: ServiceSpec,
    readonly logFile: string,
  ) {
    // A reused Redis is not ours: no log file of its.
    this.state = {
      name: spec.name,
      state: spec.command ? 'starting' : 'reused',
      urls: spec.urls,
      ports: spec.ports.map((p) => p.port),
      logFile: spec.command ? logFile : undefined,
      restarts: 0,
      check: spec.check,
    };
  }

  async start(): Promise<void> {
    const command = this.spec.command!;
    this.log ??= createWriteStream(this.logFile, {flags: 'w'});
    this.logMatched = false;
    // Its own process group: Ctrl-C reaches `up` only, which stops the services in order; and a stop
    // signal reaches everything the service started (a shell's children too).
    const child = execa(command.file, command.args, {
      shell: command.shell,
      cwd: this.spec.cwd,
      detached: true,
      stdin: 'pipe',
      all: true,
      buffer: false,
      reject: false,
      // The stop below sends its own SIGKILL, to the whole group.
      forceKillAfterDelay: false,
      env: {...this.spec.env, [WATCH_PARENT_ENV]: '1', FORCE_COLOR: '0'},
    });
    this.child = child;
    this.exited = child.then((result) => {
      if (result.exitCode === undefined && result.signal === undefined) {
        this.record(`cannot start: ${result.originalMessage}`);
        return {code: 127, signal: null};
      }
      return {code: result.exitCode ?? null, signal: result.signal ?? null};
    });
    void (async () => {
      for await (const line of child.iterable({from: 'all'})) this.record(line);
    })();
    if (child.pid) this.state.process = await identify(child.pid);
  }

  /** SIGTERM to the service's process group, SIGKILL after the grace period; safe twice. */
  async stop(graceMs: number): Promise<void> {
    const child = this.child;
    if (!child?.pid || child.exitCode !== null || child.signalCode !== null) return;
    signalGroup(child.pid, 'SIGTERM');
    // The grace timer must not keep `up` alive once everything has stopped.
    const stopped = await Promise.race([
      this.exited!.then(() => true),
      sleep(graceMs, undefined, {ref: false}).then(() => false),
    ]);
    if (!stopped) {
      signalGroup(child.pid, 'SIGKILL');
      await this.exited;
    }
    // Anything the service left in its group goes too.
    signalGroup(child.pid, 'SIGKILL');
  }

  closeLog(): void {
    this.log?.end();
    this.log = undefined;
  }

  private record(line: string): void {
    this.lastLines.push(line);
    if (this.lastLines.length > LAST_LINES) this.lastLines.shift();
    this.log?.write(`${line}\n`);
    if (this.spec.readyOnLog?.test(line)) this.logMatched = true;
    this.echo?.(this.spec.name, line);
  }
}

/**
 * Starts the services in dependency order (each when what it needs answers its readiness probe),
 * watches them, restarts them on failure when asked, and stops them in reverse order.
 */
export class Supervisor {
  private readonly runs: ServiceRun[];
  private stopping?: Promise<void>;
  private crashed?: (error: TacosError) => void;
  private readonly startedAt = new Date().toISOString();
  private saving: Promise<void> = Promise.resolve();
  readonly logDir: string;

  constructor(private readonly options: SupervisorOptions) {
    this.logDir = path.join(options.stateDir, 'logs');
    this.runs = options.specs.map((spec) => new ServiceRun(spec, path.join(this.logDir, `${spec.name}.log`)));
  }

  get services(): ServiceState[] {
    return this.runs.map((run) => run.state);
  }

  /** Sends every line of the services' output here too (the foreground terminal). */
  echo(to: (service: ServiceName, line: string) => void): void {
    for (const run of this.runs) run.echo = to;
  }

  /** Starts everything, or stops what it started and throws (naming the service, with its last lines). */
  async start(): Promise<void> {
    await checkPorts(this.options.specs);
    await mkdir(this.logDir, {recursive: true});
    await this.saveState();
    const tasks = new Listr(
      levels(this.runs).map((level) => ({
        title: level.map((run) => run.spec.name).join(', '),
        task: (_, task) =>
          task.newListr(
            level.map((run) => ({title: run.spec.name, task: () => this.startOne(run)})),
            {concurrent: true, exitOnError: true},
          ),
      })),
      {renderer: this.options.renderer, exitOnError: true, rendererOptions: {collapseSubtasks: false}},
    );
    try {
      await tasks.run();
    } catch (error) {
      await this.stop();
      throw error;
    }
    for (const run of this.runs) this.watch(run);
  }

  /** Resolves when the stack stopped on request; rejects when a service failed for good. */
  untilCrash(): Promise<void> {
    return new Promise((_resolve, reject) => {
      this.crashed = reject;
    });
  }

  /** Stops every service in reverse order and removes the state; safe twice. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      for (const run of [...this.runs].reverse()) await run.stop(this.options.graceMs);
      for (const run of this.runs) run.closeLog();
      await this.saving.catch(() => undefined);
      await removeState(this.options.stateDir);
    })();
    return this.stopping;
  }

  private async startOne(run: ServiceRun): Promise<void> {
    if (!run.spec.command) return;
    await run.start();
    run.state.state = 'starting';
    await this.saveState();
    const exitedEarly = run.exited!.then(() => false);
    const probe = run.spec.readyOnLog ? async () => run.logMatched : run.spec.ready;
    const timeoutMs = run.spec.readyTimeoutMs ?? this.options.readyTimeoutMs;
    const ready = await Promise.race([waitUntil(probe, timeoutMs), exitedEarly]);
    if (!ready) {
      const exit =
        run.child?.exitCode !== null || run.child?.signalCode !== null
          ? 'exited before it was ready'
          : `was not ready within ${timeoutMs / 1000} s`;
      throw new TacosError(`${run.spec.name} ${exit}.${tail(run)}`, {
        hint: `Its log: ${run.logFile}`,
        code: 'SERVICE_FAILED',
      });
    }
    run.state.state = 'ready';
    await this.saveState();
  }

  /** After start: a service that exits is restarted (on-failure) or ends the stack. */
  private watch(run: ServiceRun): void {
    void run.exited?.then(async ({code, signal}) => {
      if (this.stopping) return;
      const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      if (this.options.restartOnFailure && run.state.restarts < this.options.maxRestarts) {
        run.state.restarts += 1;
        run.state.state = 'restarting';
        await this.saveState();
        await sleep(Math.min(500 * 2 ** (run.state.restarts - 1), 8000));
        if (this.stopping) return;
        try {
          await this.startOne(run);
          this.watch(run);
          return;
        } catch {
          // Fall through: it failed to come back.
        }
      }
      run.state.state = 'exited';
      await this.saveState();
      const restarts = run.state.restarts ? ` after ${run.state.restarts} restart(s)` : '';
      this.crashed?.(
        new TacosError(`${run.spec.name} ${how}${restarts}.${tail(run)}`, {
          hint: this.options.restartOnFailure
            ? `Its log: ${run.logFile}`
            : `Its log: ${run.logFile}. --restart on-failure restarts a service that fails.`,
          code: 'SERVICE_FAILED',
        }),
      );
    });
  }

  /** Writes the state, one write at a time (services change state concurrently). */
  private saveState(): Promise<void> {
    this.saving = this.saving.then(async () => {
      if (this.stopping) return;
      const state: StackState = {
        supervisor: await identify(process.pid),
        env: this.options.envName,
        startedAt: this.startedAt,
        detached: this.options.detached,
        services: this.services,
      };
      await writeState(this.options.stateDir, state);
    });
    return this.saving;
  }
}

function tail(run: ServiceRun): string {
  return run.lastLines.length ? `\nIts last lines:\n${run.lastLines.map((line) => `  ${line}`).join('\n')}` : '';
}

/** Services grouped so that each group needs only services of the groups before it. */
function levels(runs: ServiceRun[]): ServiceRun[][] {
  const done = new Set<string>();
  const names = new Set(runs.map((run) => run.spec.name));
  const result: ServiceRun[][] = [];
  let left = runs;
  while (left.length > 0) {
    const level = left.filter((run) => run.spec.dependsOn.every((dep) => done.has(dep) || !names.has(dep)));
    if (level.length === 0) throw new Error(`dependency cycle among ${left.map((run) => run.spec.name).join(', ')}`);
    result.push(level);
    for (const run of level) done.add(run.spec.name);
    left = left.filter((run) => !level.includes(run));
  }
  return result;
}

/** Every port the stack will listen on is free, or nothing starts: the error names each taken port and its holder. */
export async function checkPorts(specs: ServiceSpec[]): Promise<void> {
  const taken: string[] = [];
  for (const spec of specs.filter((candidate) => candidate.command)) {
    for (const {port, variable} of spec.ports) {
      if (await canListen(port)) continue;
      const owner = await portOwner(port);
      taken.push(
        `port ${port} (${spec.name}, ${variable}) is in use${owner ? ` by pid ${owner.pid} (${owner.command})` : ''}`,
      );
    }
  }
  if (taken.length > 0) {
    throw new TacosError(`Nothing was started: ${taken.join('; ')}.`, {
      hint: 'Stop the process that holds it, or give the service another port in the env file (the variable named).',
      code: 'PORT_IN_USE',
    });
  }
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({port, host: '127.0.0.1', exclusive: true}, () => server.close(() => resolve(true)));
  });
}

export const STOP_GRACE_MS = 10_000;
