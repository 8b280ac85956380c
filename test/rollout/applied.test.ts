/**
 * Waiting until the gateway took a share, against a real HTTP server answering /api/v1/rollout with
 * the settings a test sets (the gateway's side is tested with the gateway in rollout.e2e.test.ts).
 */
import {createServer, type Server} from 'node:http';
import type {AddressInfo} from 'node:net';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {describeApplied, settingsBefore, waitUntilTaken} from '../../src/services/rollout/applied.js';

interface Settings {
  grpc_enabled: boolean;
  grpc_traffic_percent: number;
  generation: number;
  fixed_by_process_env: string[];
  last_error: string | null;
}

let server: Server;
let url: string;
let settings: Settings;
/** Settings the server switches to after this many reads (a reload that lands while the CLI polls). */
let reload: {afterReads: number; to: Partial<Settings>} | undefined;
let reads = 0;

beforeAll(async () => {
  server = createServer((request, response) => {
    if (request.url !== '/api/v1/rollout') return response.writeHead(404).end();
    reads += 1;
    if (reload && reads > reload.afterReads) settings = {...settings, ...reload.to};
    response.writeHead(200, {'content-type': 'application/json'});
    response.end(
      JSON.stringify({pid: 4242, workers: [], settings: {env_file: '.env.staging', restart_needed: [], ...settings}}),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
});

function serve(initial: Settings, next?: {afterReads: number; to: Partial<Settings>}) {
  settings = initial;
  reload = next;
  reads = 0;
}

const base: Settings = {
  grpc_enabled: true,
  grpc_traffic_percent: 0,
  generation: 3,
  fixed_by_process_env: [],
  last_error: null,
};

describe('waiting until the running gateway took a share', () => {
  it('taken once the generation moves past the one before, with the values written', async () => {
    serve(base, {afterReads: 3, to: {generation: 4, grpc_traffic_percent: 100}});
    const before = await settingsBefore(url);
    expect(before).toEqual({generation: 3, lastError: null});
    const report = await waitUntilTaken(url, {grpcEnabled: true, percent: 100}, {before, intervalMs: 20});
    expect(report).toMatchObject({taken: true, pid: 4242});
    expect(reads).toBeGreaterThan(3);
    expect(describeApplied('.env.staging', {grpcEnabled: true, percent: 100}, report)).toMatch(
      /^\.env\.staging: the running gateway \(pid 4242\) took GRPC_TRAFFIC_PERCENT=100 in \d+\.\d s$/,
    );
  });

  it('the same values at the old generation are not yet taken: a timeout', async () => {
    serve({...base, grpc_traffic_percent: 100});
    const report = await waitUntilTaken(
      url,
      {grpcEnabled: true, percent: 100},
      {before: {generation: 3, lastError: null}, intervalMs: 20, timeoutMs: 200},
    );
    expect(report).toMatchObject({taken: false, reason: 'timeout'});
  });

  it('a value the process environment fixes: says so at once', async () => {
    serve({...base, fixed_by_process_env: ['GRPC_TRAFFIC_PERCENT']});
    const report = await waitUntilTaken(
      url,
      {grpcEnabled: true, percent: 50},
      {before: {generation: 3, lastError: null}, intervalMs: 20},
    );
    expect(report).toMatchObject({taken: false, reason: 'fixed_by_process_env'});
    expect(describeApplied('.env.staging', {grpcEnabled: true, percent: 50}, report)).toMatch(
      /restart the gateway without it/,
    );
  });

  it('a reload the gateway refused (a new last_error)', async () => {
    serve(
      {...base, last_error: 'GRPC_TRAFFIC_PERCENT=old is not valid'},
      {afterReads: 2, to: {last_error: 'GRPC_TRAFFIC_PERCENT=abc is not valid'}},
    );
    const before = await settingsBefore(url);
    const report = await waitUntilTaken(url, {grpcEnabled: true, percent: 50}, {before, intervalMs: 20});
    expect(report).toMatchObject({taken: false, reason: 'last_error'});
    expect(report.taken === false && report.detail).toMatch(/abc is not valid/);
  });

  it('no gateway on the port: unreachable after the wait', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const report = await waitUntilTaken(
      `http://127.0.0.1:${port}`,
      {grpcEnabled: true},
      {intervalMs: 20, timeoutMs: 200},
    );
    expect(report).toMatchObject({taken: false, reason: 'unreachable'});
  });
});
