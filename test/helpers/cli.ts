import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {execa, type ResultPromise} from 'execa';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = path.join(REPO_ROOT, 'bin', 'run.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `tacos ARGS` as a user would (node bin/run.js), bounded by timeoutMs. */
export async function runCli(
  args: string[],
  options: {cwd?: string; env?: Record<string, string>; timeoutMs?: number; input?: string} = {},
): Promise<CliResult> {
  const timeoutMs = options.timeoutMs ?? 20_000;
  const result = await execa(process.execPath, [BIN, ...args], {
    cwd: options.cwd ?? REPO_ROOT,
    env: options.env,
    input: options.input ?? '',
    timeout: timeoutMs,
    killSignal: 'SIGKILL',
    reject: false,
    stripFinalNewline: false,
  });
  if (result.timedOut)
    throw new Error(
      `tacos ${args.join(' ')} did not finish within ${timeoutMs} ms\n${result.stdout}\n${result.stderr}`,
    );
  return {code: result.exitCode ?? null, stdout: result.stdout, stderr: result.stderr};
}

export interface LongRunningCli {
  child: ResultPromise;
  /** Parsed JSON lines of stdout so far. */
  lines: Array<Record<string, any>>;
  stderr(): string;
  /** Resolves with the first line matching, or rejects after timeoutMs. */
  waitForLine(match: (line: Record<string, any>) => boolean, timeoutMs?: number): Promise<Record<string, any>>;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  /** SIGKILL if still running; safe twice. */
  kill(): void;
}

/** Starts a long-running tacos command whose stdout is JSON lines (a server). */
export function startCli(args: string[], options: {cwd?: string; env?: Record<string, string>} = {}): LongRunningCli {
  // Signals sent by the tests are the only ones: no SIGKILL follows a SIGTERM on its own.
  const child = execa(process.execPath, [BIN, ...args], {
    cwd: options.cwd ?? REPO_ROOT,
    env: options.env,
    stdin: 'ignore',
    buffer: false,
    reject: false,
    forceKillAfterDelay: false,
  });
  const lines: Array<Record<string, any>> = [];
  const waiters = new Set<() => void>();
  let stderr = '';
  void (async () => {
    for await (const part of child.iterable()) {
      if (!part) continue;
      try {
        lines.push(JSON.parse(part));
      } catch {
        lines.push({text: part});
      }
      for (const waiter of waiters) waiter();
    }
  })();
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const exited = child.then((result) => result.exitCode ?? null);
  return {
    child,
    lines,
    stderr: () => stderr,
    exited,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
    waitForLine(match, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = lines.find(match);
          if (found) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(found);
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(`no matching line within ${timeoutMs} ms; stdout: ${JSON.stringify(lines)}; stderr: ${stderr}`),
          );
        }, timeoutMs);
        waiters.add(check);
        check();
        void exited.then(() => setTimeout(check, 0));
      });
    },
  };
}
