/**
 * A program in a real pseudo-terminal, driven through tmux as a user drives it: keys in, the pane's
 * text out. Each session has its own tmux server (a socket of its own, no config file), so tests never
 * see each other's panes nor the user's tmux.
 */
import {randomBytes} from 'node:crypto';
import {rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {execa} from 'execa';
import {onPath} from './required-checks.js';

/** Why tmux cannot run here, or undefined when it can. */
export function tmuxMissing(): string | undefined {
  return onPath('tmux') ? undefined : 'tmux is not on PATH (Debian: apt-get install tmux)';
}

export interface PtyOptions {
  cwd: string;
  /** Added to this process's environment. */
  env?: Record<string, string>;
  /** Columns and rows of the terminal: wide enough that prompts and JSON lines do not wrap. */
  width?: number;
  height?: number;
}

export interface Pty {
  /** Types the text as is (no key names are interpreted). */
  type(text: string): Promise<void>;
  /** Presses keys by tmux's names: Enter, Tab, Up, C-c, C-d... */
  press(...keys: string[]): Promise<void>;
  /** Everything the terminal shows, scrollback included, lines joined where the terminal wrapped them. */
  screen(): Promise<string>;
  /** The number of lines shown so far: waitFor(..., {from}) then reads only what came after. */
  lineCount(): Promise<number>;
  /** The screen (from line `from`) once it matches, polled; fails with the screen after timeoutMs. */
  waitFor(
    expected: RegExp | ((screen: string) => boolean),
    options?: {from?: number; timeoutMs?: number},
  ): Promise<string>;
  /** The program's exit code once it has ended (128 + N when killed by signal N); fails with the screen after timeoutMs. */
  exitCode(timeoutMs?: number): Promise<number>;
  /** Ends the program and the tmux server; safe twice. */
  stop(): Promise<void>;
}

const POLL_MS = 50;
/** The line the shell around the program prints when it ends, followed by its exit status. */
const EXIT_MARK = '[pty] exit status ';
const DEFAULT_WAIT_MS = 10_000;

/** Starts `command` (argv, no shell) in a new terminal. */
export async function startPty(command: string[], options: PtyOptions): Promise<Pty> {
  // The server's socket: a path of ours (tmux -L would leave its file under /tmp/tmux-UID behind).
  const socket = path.join(tmpdir(), `tacos-pty-${process.pid}-${randomBytes(4).toString('hex')}.sock`);
  const session = 'main';
  const env = {...process.env, ...options.env};
  const tmux = async (...args: string[]) =>
    (await execa('tmux', ['-S', socket, '-f', '/dev/null', ...args], {env, timeout: 10_000})).stdout;

  await tmux(
    'start-server',
    ';',
    'set-option',
    '-g',
    'history-limit',
    '50000',
    ';',
    'new-session',
    '-d',
    '-s',
    session,
    '-x',
    String(options.width ?? 200),
    '-y',
    String(options.height ?? 50),
    '-c',
    options.cwd,
    ...Object.entries(options.env ?? {}).flatMap(([key, value]) => ['-e', `${key}=${value}`]),
    '--',
    // A shell waits for the program and prints its exit status: tmux's own (#{pane_dead_status}) is
    // sometimes never known (tmux 3.3a). The shell outlives Ctrl-C (a trap, which the program does not
    // inherit), and its sleep keeps the pane, and so the program's output, until stop().
    'sh',
    '-c',
    `trap true INT; "$@"; echo "${EXIT_MARK}$?"; exec sleep 600`,
    'sh',
    ...command,
  );

  const lines = async () =>
    (await tmux('capture-pane', '-p', '-J', '-S', '-', '-t', session))
      .split('\n')
      .map((line) => line.trimEnd())
      .join('\n')
      .trimEnd()
      .split('\n');
  const screen = async () => (await lines()).join('\n');
  const poll = async <T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    for (let attempt = 0; attempt <= timeoutMs / POLL_MS; attempt++) {
      const found = await probe();
      if (found !== undefined) return found;
      if (Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    throw new Error(`${what} within ${timeoutMs} ms; the terminal shows:\n${await screen()}`);
  };

  let stopped: Promise<void> | undefined;
  return {
    type: async (text) => void (await tmux('send-keys', '-t', session, '-l', '--', text)),
    press: async (...keys) => void (await tmux('send-keys', '-t', session, ...keys)),
    screen,
    lineCount: async () => (await lines()).length,
    waitFor: (expected, {from = 0, timeoutMs = DEFAULT_WAIT_MS} = {}) => {
      const matches = typeof expected === 'function' ? expected : (text: string) => expected.test(text);
      return poll(
        `no match for ${expected instanceof RegExp ? expected : 'the condition'}`,
        async () => {
          const text = (await lines()).slice(from).join('\n');
          return matches(text) ? text : undefined;
        },
        timeoutMs,
      );
    },
    exitCode: (timeoutMs = DEFAULT_WAIT_MS) =>
      poll(
        'the program did not end',
        async () => {
          const mark = (await lines()).findLast((line) => line.startsWith(EXIT_MARK));
          return mark === undefined ? undefined : Number(mark.slice(EXIT_MARK.length));
        },
        timeoutMs,
      ),
    stop: () =>
      (stopped ??= tmux('kill-server')
        .catch(() => undefined)
        .then(() => rm(socket, {force: true}))),
  };
}
