import {spawn, type ChildProcess} from 'node:child_process';
import path from 'node:path';
import {fileURLToPath} from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = path.join(REPO_ROOT, 'bin', 'run.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `tacos ARGS` as a user would (node bin/run.js), bounded by timeoutMs. */
export function runCli(args: string[], options: {cwd?: string; env?: Record<string, string>; timeoutMs?: number; input?: string} = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: options.cwd ?? REPO_ROOT,
      env: {...process.env, ...options.env},
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`tacos ${args.join(' ')} did not finish within ${options.timeoutMs ?? 20_000} ms\n${stdout}\n${stderr}`));
    }, options.timeoutMs ?? 20_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({code, stdout, stderr});
    });
    child.stdin.end(options.input ?? '');
  });
}

export interface LongRunningCli {
  child: ChildProcess;
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
  const child = spawn(process.execPath, [BIN, ...args], {cwd: options.cwd ?? REPO_ROOT, env: {...process.env, ...options.env}, stdio: ['ignore', 'pipe', 'pipe']});
  const lines: Array<Record<string, any>> = [];
  const waiters = new Set<() => void>();
  let buffered = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => {
    buffered += chunk;
    const parts = buffered.split('\n');
    buffered = parts.pop() ?? '';
    for (const part of parts.filter(Boolean)) {
      try {
        lines.push(JSON.parse(part));
      } catch {
        lines.push({text: part});
      }
    }
    for (const waiter of waiters) waiter();
  });
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
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
          reject(new Error(`no matching line within ${timeoutMs} ms; stdout: ${JSON.stringify(lines)}; stderr: ${stderr}`));
        }, timeoutMs);
        waiters.add(check);
        check();
        void exited.then(() => setTimeout(check, 0));
      });
    },
  };
}
