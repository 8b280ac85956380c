import {mkdtemp, readFile, writeFile} from 'node:fs/promises';
import {createServer, type Server} from 'node:http';
import type {AddressInfo} from 'node:net';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {runCli} from '../helpers/cli.js';

const ENV_FILE = 'GRPC_ENABLED=false\nGRPC_TRAFFIC_PERCENT=0\n';

let project: string;
/** A real HTTP server that is not a tacos gateway: every route answers 404. */
let other: Server;
let otherUrl: string;

beforeAll(async () => {
  project = await mkdtemp(path.join(tmpdir(), 'tacos-rollout-'));
  await writeFile(path.join(project, '.env.staging'), ENV_FILE);
  await writeFile(path.join(project, '.env.prod'), ENV_FILE);
  other = createServer((_request, response) => response.writeHead(404).end('not found'));
  await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
  otherUrl = `http://127.0.0.1:${(other.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => other?.close(resolve));
});

const rollout = (args: string[]) =>
  runCli(['rollout', ...args], {cwd: project, env: {TACOS_STATE_DIR: path.join(project, '.tacos')}});

describe('tacos rollout grpc: refused before anything changes', () => {
  it.each([
    [['--steps', '5,1'], /--steps 5,1 is not increasing/],
    [['--steps', '1,150'], /"150" is not a whole number from 0 to 100/],
    [['--interval', 'soon'], /"soon" is not a duration/],
  ])('%j: usage error (exit 2)', async (args, message) => {
    const result = await rollout(['grpc', '--env', 'staging', ...args]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(await readFile(path.join(project, '.env.staging'), 'utf8')).toBe(ENV_FILE);
  });

  it('no running gateway: says so, with the way to start one (exit 1)', async () => {
    const result = await rollout(['grpc', '--env', 'staging', '--steps', '50,100', '--interval', '1s']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/No gateway of the environment staging is running here/);
    expect(result.stderr).toMatch(/Hint: .*tacos up --env staging.*--url/);
    expect(await readFile(path.join(project, '.env.staging'), 'utf8')).toBe(ENV_FILE);
  });

  it('production without a terminal needs --yes (exit 2), and nothing is written', async () => {
    const result = await rollout(['grpc', '--env', 'prod', '--steps', '50,100', '--interval', '1s']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/\.env\.prod is production/);
    expect(result.stderr).toMatch(/Hint: Pass --yes/);
    expect(await readFile(path.join(project, '.env.prod'), 'utf8')).toBe(ENV_FILE);
  });

  it('a server without the rollout route is not a tacos gateway (exit 1)', async () => {
    const result = await rollout(['grpc', '--env', 'staging', '--url', otherUrl, '--steps', '50', '--interval', '1s']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/has no \/api\/v1\/rollout route: it is not a tacos gateway/);
    expect(await readFile(path.join(project, '.env.staging'), 'utf8')).toBe(ENV_FILE);
  });
});

describe('tacos rollout status and reset', () => {
  it('status without a running gateway: exit 1 with a hint', async () => {
    const result = await rollout(['status', '--env', 'staging']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/No gateway of the environment staging/);
  });

  it('reset against a server without the route: not a tacos gateway', async () => {
    const result = await rollout(['reset', '--env', 'staging', '--url', otherUrl]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/not a tacos gateway/);
  });
});
