/**
 * A clean temporary TypeScript project (ESM, `tsc --strict`) around generated code, compiled with
 * the repo's own typescript and run with node, both as child processes (never spawnSync: the
 * servers those programs call run in the test process and must keep answering meanwhile).
 */
import {mkdir, mkdtemp, rm, symlink, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {execa, type ResultPromise} from 'execa';
import {REPO_ROOT} from './cli.js';

export const TSC = path.join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

/** The compiler options the generated code must compile with. */
export const STRICT_COMPILER_OPTIONS = {
  strict: true,
  target: 'ES2022',
  module: 'NodeNext',
  moduleResolution: 'NodeNext',
  skipLibCheck: true,
  types: ['node'],
  outDir: 'dist',
};

export interface ProcessResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall time from spawn to exit. */
  ms: number;
  /** Milliseconds from spawn until stdout last grew (the program's last output). */
  lastOutputMs: number;
}

const children = new Set<ResultPromise>();

/** Runs `node ARGS` in `cwd`, SIGKILLed (and rejected) after timeoutMs. */
export async function runNode(
  args: string[],
  options: {cwd: string; timeoutMs: number; env?: Record<string, string>},
): Promise<ProcessResult> {
  const started = performance.now();
  const child = execa(process.execPath, args, {
    cwd: options.cwd,
    env: options.env,
    stdin: 'ignore',
    timeout: options.timeoutMs,
    killSignal: 'SIGKILL',
    reject: false,
    stripFinalNewline: false,
  });
  children.add(child);
  let lastOutputMs = 0;
  child.stdout.on('data', () => (lastOutputMs = performance.now() - started));
  const result = await child.finally(() => children.delete(child));
  const ms = performance.now() - started;
  if (result.timedOut)
    throw new Error(
      `node ${args.join(' ')} did not finish within ${options.timeoutMs} ms\nstdout: ${result.stdout}\nstderr: ${result.stderr}`,
    );
  if (result.exitCode === undefined && result.signal === undefined)
    throw result instanceof Error ? result : new Error(`node ${args.join(' ')} did not start`);
  return {
    code: result.exitCode ?? null,
    signal: result.signal ?? null,
    stdout: result.stdout,
    stderr: result.stderr,
    ms,
    lastOutputMs,
  };
}

/** SIGKILLs every child still running (afterAll); safe twice. */
export function killChildren(): void {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  children.clear();
}

export interface Diagnostic {
  file: string;
  line: number;
  code: string;
  message: string;
}

/** tsc's `file(line,col): error TSnnnn: message` lines (continuation lines folded into the message). */
export function parseDiagnostics(output: string): Diagnostic[] {
  const diagnostics: Diagnostic[] = [];
  for (const line of output.split('\n')) {
    const match = /^(.+?)\((\d+),\d+\): error (TS\d+): (.*)$/.exec(line);
    if (match)
      diagnostics.push({
        file: match[1].split(path.sep).join('/'),
        line: Number(match[2]),
        code: match[3],
        message: match[4],
      });
    else if (diagnostics.length > 0 && line.startsWith(' ')) diagnostics.at(-1)!.message += `\n${line}`;
  }
  return diagnostics;
}

/** The lines of a source marked `// wrong`: the ones that must not compile. */
export function markedLines(source: string): number[] {
  return source
    .split('\n')
    .map((line, index) => (line.includes('// wrong') ? index + 1 : 0))
    .filter(Boolean);
}

export const describeDiagnostics = (diagnostics: Diagnostic[]) =>
  diagnostics.map((d) => `${d.file}:${d.line} ${d.code} ${d.message}`).join('\n');

/** The lines with an error in `file` (its path's end), sorted, each once; -1 stands for an error in another file. */
export function errorLines(diagnostics: Diagnostic[], file: string): number[] {
  const lines = diagnostics.map((d) => (d.file.endsWith(file) ? d.line : -1));
  return [...new Set(lines)].sort((a, b) => a - b);
}

export interface TsProject {
  dir: string;
  /** Writes a file (dirs made as needed), relative to the project. */
  write(relative: string, content: string): Promise<void>;
  /** `tsc -p` of the project's tsconfig.json (or another one of it). */
  compile(tsconfig?: string): Promise<ProcessResult & {diagnostics: Diagnostic[]}>;
  /** `node dist/FILE.js ARGS` in the project dir. */
  run(compiled: string, args: string[], timeoutMs?: number): Promise<ProcessResult>;
  /** Removes the project dir; safe twice. */
  dispose(): Promise<void>;
}

/**
 * A fresh project: package.json {"type":"module"}, a strict tsconfig.json over src/, and
 * node_modules linked to the repo's (for @grpc/grpc-js, @grpc/proto-loader and @types/node).
 */
export async function createTsProject(prefix: string): Promise<TsProject> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  const write = async (relative: string, content: string) => {
    const target = path.join(dir, relative);
    await mkdir(path.dirname(target), {recursive: true});
    await writeFile(target, content);
  };
  await write(
    'package.json',
    `${JSON.stringify({name: 'generated-client-check', private: true, type: 'module'}, null, 2)}\n`,
  );
  await write(
    'tsconfig.json',
    `${JSON.stringify({compilerOptions: STRICT_COMPILER_OPTIONS, include: ['src/**/*.ts']}, null, 2)}\n`,
  );
  await symlink(path.join(REPO_ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  let disposed = false;
  return {
    dir,
    write,
    async compile(tsconfig = 'tsconfig.json') {
      const result = await runNode([TSC, '-p', path.join(dir, tsconfig), '--pretty', 'false'], {
        cwd: dir,
        timeoutMs: 120_000,
      });
      return {...result, diagnostics: parseDiagnostics(result.stdout + result.stderr)};
    },
    run: (compiled, args, timeoutMs = 30_000) =>
      runNode([path.join(dir, 'dist', compiled), ...args], {cwd: dir, timeoutMs}),
    async dispose() {
      if (disposed) return;
      disposed = true;
      await rm(dir, {recursive: true, force: true});
    },
  };
}
