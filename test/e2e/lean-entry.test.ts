/**
 * `tacos call`, `list` and `describe` start through bin/lean.js (no oclif config load), and say
 * exactly what oclif's own execute says: the same output, errors, help and exit codes, for a
 * success, a gRPC error, each kind of flag or argument oclif refuses, and a usage error of ours.
 */
import {mkdtemp, rm, writeFile} from 'node:fs/promises';
import {createRequire} from 'node:module';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {pathToFileURL} from 'node:url';
import {execa} from 'execa';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {BIN, runCli, type CliResult} from '../helpers/cli.js';
import {startAllTypesServer, type TestServer} from '../helpers/call-servers.js';

let project: string;
let server: TestServer | undefined;

beforeAll(async () => {
  project = await mkdtemp(path.join(tmpdir(), 'tacos-lean-'));
  server = await startAllTypesServer({reflection: 'v1alpha'});
});

afterAll(async () => {
  await server?.stop();
  await server?.stop();
  await rm(project, {recursive: true, force: true});
});

const env = () => ({TACOS_STATE_DIR: path.join(project, '.tacos')});

/**
 * The same command run by oclif's execute, as bin/run.js ran every command before the lean entry
 * (from a script of its own, so that process.argv, which oclif's error help reads, is the same).
 */
async function throughOclif(args: string[]): Promise<CliResult> {
  const script = path.join(project, 'oclif-run.mjs');
  const execute = pathToFileURL(createRequire(BIN).resolve('@oclif/core/execute')).href;
  await writeFile(
    script,
    `const {execute} = await import(${JSON.stringify(execute)});\nawait execute({dir: ${JSON.stringify(pathToFileURL(BIN).href)}});\n`,
  );
  const result = await execa(process.execPath, [script, ...args], {
    cwd: project,
    env: env(),
    input: '',
    timeout: 20_000,
    killSignal: 'SIGKILL',
    reject: false,
    stripFinalNewline: false,
  });
  return {code: result.exitCode ?? null, stdout: result.stdout, stderr: result.stderr};
}

describe('the lean entry of call, list and describe', () => {
  const cases: Array<[string, (address: string) => string[]]> = [
    ['a call', (address) => ['call', '--addr', address, 'AllTypes.Unary', '-d', '{"title":"lean"}']],
    ['a gRPC error (exit 67)', (address) => ['call', '--addr', address, 'AllTypes.Fail', '-d', '{}']],
    ['an unknown method (exit 2)', (address) => ['call', '--addr', address, 'Nope']],
    ['a request that is not JSON (exit 2)', (address) => ['call', '--addr', address, 'AllTypes.Unary', '-d', '{x']],
    ['an unknown flag', (address) => ['call', '--addr', address, '--bogus', 'AllTypes.Unary']],
    ['-h, which is no flag of call', () => ['call', '-h']],
    ['a flag without its value', () => ['call', '--addr']],
    ['an argument too many', (address) => ['call', '--addr', address, 'AllTypes.Unary', 'extra']],
    ['a flag value out of range', (address) => ['call', '--addr', address, '--port', '99999', 'AllTypes.Unary']],
    ['a duration that is none', (address) => ['call', '--addr', address, '--timeout', 'soon', 'AllTypes.Unary']],
    ['--help', (address) => ['call', '--addr', address, '--help']],
    ['--example', (address) => ['call', '--addr', address, 'AllTypes.Unary', '--example']],
    ['list', (address) => ['list', '--addr', address, 'AllTypes']],
    ['describe without its argument', (address) => ['describe', '--addr', address]],
    ['describe', (address) => ['describe', '--addr', address, 'tacostest.v1.Echo']],
  ];

  it.each(cases)('%s: the same stdout, stderr and exit code as through oclif', async (_, argsOf) => {
    const args = argsOf(server!.address);
    const lean = await runCli(args, {cwd: project, env: env()});
    const oclif = await throughOclif(args);
    expect(lean).toEqual(oclif);
  });
});
