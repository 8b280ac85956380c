// Detached daemon: its output goes straight to a log file's fd, which execa's types refuse (fds 3-9 only).
import {spawn} from 'node:child_process';
import {closeSync, openSync} from 'node:fs';
import {mkdir, readFile} from 'node:fs/promises';
import path from 'node:path';
import {blue, cyan, green, magenta, yellow} from 'colorette';
import {loadEnvironment} from '../config.js';
import {TacosError} from '../errors.js';
import {PACKAGE_ROOT} from '../paths.js';
import {planStack, type StackOptions} from './plan.js';
import {findStackFile, loadStackFile} from './stack-file.js';
import {stateDir} from '../paths.js';
import {isSameProcess, readLiveState, readState, type ServiceName} from './state.js';
import {probeServices, statusTable} from './status.js';
import {STOP_GRACE_MS, Supervisor} from './supervisor.js';

export interface UpOptions extends Omit<StackOptions, 'stateDir' | 'userServices'> {
  /** --stack-file: else tacos.stack.yaml (or .yml) in the project dir, if there is one. */
  stackFile?: string;
  detach: boolean;
  /** The background supervisor of a detached stack (no terminal). */
  supervise: boolean;
  restartOnFailure: boolean;
  /** The command line to start the background supervisor with (`up` plus these). */
  superviseArgs: string[];
}

export interface Output {
  out(text: string): void;
  err(text: string): void;
  interactive: boolean;
  color: boolean;
}

const READY_TIMEOUT_MS = 30_000;
const COLORS: Record<ServiceName, (text: string) => string> = {
  redis: magenta,
  reservation: cyan,
  payment: yellow,
  gateway: green,
};

/**
 * `tacos up`: starts the stack and, in the foreground, shows its logs until Ctrl-C, then stops it
 * in reverse order. With `detach`, a background supervisor runs the stack and this returns once it
 * is ready. Returns the exit code.
 */
export async function up(options: UpOptions, output: Output): Promise<number> {
  const dir = stateDir();
  const {state: running} = await readLiveState(dir);
  if (running) {
    output.out(
      `A stack is already running (env ${running.env}, since ${running.startedAt}); \`tacos down\` stops it.\n`,
    );
    output.out(`${statusTable(await probeServices(running), output.color)}\n`);
    return 0;
  }
  // A bad stack file stops everything before anything starts (the detached supervisor reads it again).
  const stackFile = findStackFile(process.cwd(), options.stackFile);
  const userServices = stackFile ? loadStackFile(stackFile) : [];
  if (options.detach && !options.supervise) return startDetached(dir, options, output);

  const specs = await planStack({...options, userServices, stateDir: dir}, loadEnvironment({envName: options.envName}));
  const supervisor = new Supervisor({
    specs,
    stateDir: dir,
    envName: options.envName ?? 'local',
    detached: options.supervise,
    restartOnFailure: options.restartOnFailure,
    maxRestarts: 5,
    graceMs: STOP_GRACE_MS,
    readyTimeoutMs: READY_TIMEOUT_MS,
    renderer: options.supervise ? 'silent' : output.interactive ? 'default' : 'simple',
  });
  const stopRequested = new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await supervisor.start();
  if (!options.supervise) {
    output.out(
      `${statusTable(await probeServices({...(await readState(dir))!, services: supervisor.services}), output.color)}\n`,
    );
    output.out('Logs follow; Ctrl-C stops the stack.\n');
    const width = Math.max(...specs.map((spec) => spec.name.length));
    supervisor.echo((service, line) => {
      const prefix = `${service.padEnd(width)} | `;
      output.out(`${output.color ? (COLORS[service] ?? blue)(prefix) : prefix}${line}\n`);
    });
  }
  try {
    await Promise.race([stopRequested, supervisor.untilCrash()]);
  } finally {
    if (!options.supervise) output.err('Stopping the stack...\n');
    await supervisor.stop();
  }
  return 0;
}

/** Starts `tacos up --supervise` in the background and waits until its stack is ready or it failed. */
async function startDetached(dir: string, options: UpOptions, output: Output): Promise<number> {
  await mkdir(path.join(dir, 'logs'), {recursive: true});
  const logFile = path.join(dir, 'logs', 'supervisor.log');
  const log = openSync(logFile, 'w');
  const child = spawn(
    process.execPath,
    [path.join(PACKAGE_ROOT, 'bin', 'run.js'), 'up', '--supervise', ...options.superviseArgs],
    {
      detached: true,
      stdio: ['ignore', log, log],
      env: {...process.env, FORCE_COLOR: '0'},
    },
  );
  closeSync(log);
  child.unref();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + READY_TIMEOUT_MS * 2;
  while (Date.now() < deadline) {
    const state = await readState(dir);
    if (
      state &&
      state.supervisor.pid === child.pid &&
      state.services.every((s) => s.state === 'ready' || s.state === 'reused')
    ) {
      output.out(`${statusTable(await probeServices(state), output.color)}\n`);
      output.out('The stack runs in the background: `tacos status`, `tacos logs -f`, `tacos down`.\n');
      return 0;
    }
    const ended = await Promise.race([
      exited.then(() => true),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 100)),
    ]);
    if (ended) {
      const reason = (await readFile(logFile, 'utf8').catch(() => '')).trim();
      throw new TacosError(`The stack did not start.${reason ? `\n${reason}` : ''}`, {
        hint: `The supervisor's log: ${logFile}`,
        code: 'SERVICE_FAILED',
      });
    }
  }
  const state = await readState(dir);
  if (state && (await isSameProcess(state.supervisor))) process.kill(state.supervisor.pid, 'SIGTERM');
  throw new TacosError(`The stack was not ready within ${(READY_TIMEOUT_MS * 2) / 1000} s; it was stopped.`, {
    hint: `See ${path.join(dir, 'logs')}`,
  });
}
