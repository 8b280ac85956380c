import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises';
import {createServer, type Server} from 'node:http';
import type {AddressInfo} from 'node:net';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {identify, writeState} from '../../src/services/stack/state.js';
import {runCli} from '../helpers/cli.js';

/** A real HTTP server standing as a gateway of the stack that is not a tacos gateway (no rollout route). */
let other: Server;
let otherUrl: string;
let project: string;

beforeAll(async () => {
  other = createServer((_request, response) => response.writeHead(404).end('not found'));
  await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
  otherUrl = `http://127.0.0.1:${(other.address() as AddressInfo).port}`;
  project = await mkdtemp(path.join(tmpdir(), 'tacos-switch-report-'));
  await writeFile(path.join(project, '.env.staging'), 'GRPC_ENABLED=false\n');
  await writeFile(path.join(project, '.env.dev'), 'GRPC_ENABLED=false\n');
  // The state `tacos up --env staging --gateway-cmd ...` would leave: this process supervises.
  await writeState(path.join(project, '.tacos'), {
    supervisor: await identify(process.pid),
    env: 'staging',
    startedAt: new Date().toISOString(),
    detached: false,
    services: [{name: 'gateway', state: 'ready', urls: [otherUrl], ports: [], restarts: 0}],
  });
});

afterAll(async () => {
  await new Promise((resolve) => other?.close(resolve));
  await rm(project, {recursive: true, force: true});
});

const oneLine = (text: string) => text.replace(/\s*›\s*/g, ' ').replace(/\s+/g, ' ');

describe('tacos env switch: the report on the running gateway', () => {
  it('a gateway without the rollout route: a warning, the file written (exit 0)', async () => {
    const result = await runCli(['env', 'switch', 'grpc', '--env', 'staging', '--percent', '10'], {cwd: project});
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('.env.staging: changed (GRPC_ENABLED=true, GRPC_TRAFFIC_PERCENT=10)');
    expect(oneLine(result.stderr)).toMatch(
      /\.env\.staging: the running gateway did not take GRPC_TRAFFIC_PERCENT=10 \(not_a_tacos_gateway\)/,
    );
    expect(await readFile(path.join(project, '.env.staging'), 'utf8')).toBe(
      'GRPC_ENABLED=true\nGRPC_TRAFFIC_PERCENT=10\n',
    );
  });

  it('--wait-applied makes it a failure (exit 1), the file still written', async () => {
    const result = await runCli(['env', 'switch', 'grpc', '--env', 'staging', '--percent', '20', '--wait-applied'], {
      cwd: project,
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/did not take GRPC_TRAFFIC_PERCENT=20 \(not_a_tacos_gateway\)/);
    expect(result.stderr).toMatch(/Hint: The env file was written/);
    expect(await readFile(path.join(project, '.env.staging'), 'utf8')).toContain('GRPC_TRAFFIC_PERCENT=20');
  });

  it('an environment the running stack does not run: no report', async () => {
    const result = await runCli(['env', 'switch', 'grpc', '--env', 'dev', '--wait-applied'], {cwd: project});
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe('.env.dev: changed (GRPC_ENABLED=true)\n');
    expect(result.stderr).toBe('');
  });
});
