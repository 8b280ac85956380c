/**
 * Faults aimed at one door of a mock (issue 17): PUT /admin/faults with `door` changes that door's
 * settings only, GET shows each door's, a call at the faulty door waits the latency while the same
 * method at the other door does not, and bad input is a 400 that says what to send.
 */
import * as grpc from '@grpc/grpc-js';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {Faults} from '../../src/services/mocks/faults.js';
import type {RunningMock} from '../../src/services/mocks/mock-server.js';
import {startMock} from '../../src/services/mocks/serve.js';
import {contractClient} from '../helpers/grpc-client.js';
import {fetchJson} from '../helpers/http.js';

type AnyClient = grpc.Client & Record<string, any>;

const INVENTORY = 'reservation.v1.InventoryService';
const CONCERT = 'evt_2026_concert';
const LATENCY_MS = 2000;

let running: RunningMock;
let inventory: AnyClient;
const http = () => `http://127.0.0.1:${running.httpPort}`;

beforeAll(async () => {
  running = await startMock('reservation', {httpPort: 0, grpcPort: 0}, {LOG_LEVEL: 'warn'});
  inventory = await contractClient(INVENTORY, `127.0.0.1:${running.grpcPort}`);
});

afterAll(async () => {
  inventory?.close();
  await running?.close();
});

const putFaults = (body: unknown) => fetchJson(`${http()}/admin/faults`, {method: 'PUT', body});
const getFaults = async () => (await fetchJson(`${http()}/admin/faults`)).json;

/** GetInventoryStatus over gRPC with a deadline; resolves with how long it took, whatever the outcome. */
function grpcCallMs(deadlineMs: number): Promise<{ms: number; error: grpc.ServiceError | null}> {
  const started = performance.now();
  return new Promise((resolve) => {
    inventory.GetInventoryStatus(
      {event_id: CONCERT},
      new grpc.Metadata(),
      {deadline: Date.now() + deadlineMs},
      (error: grpc.ServiceError | null) => resolve({ms: performance.now() - started, error}),
    );
  });
}

describe('faults per door', () => {
  it('2 s latency on the gRPC door only: a gRPC call waits it, the same method over HTTP does not', async () => {
    const changed = await putFaults({latency: '2s', door: 'grpc'});
    expect(changed.status, changed.text).toBe(200);
    const expected = {
      latency_ms: null,
      error_rate: 0,
      doors: {grpc: {latency_ms: LATENCY_MS, error_rate: 0}, http: {latency_ms: 0, error_rate: 0}},
    };
    expect(changed.json).toEqual(expected);
    expect(await getFaults()).toEqual(expected);

    const overGrpc = await grpcCallMs(LATENCY_MS + 3000);
    expect(overGrpc.error).toBeNull();
    // 1 ms of slack for the timer's millisecond granularity.
    expect(overGrpc.ms).toBeGreaterThanOrEqual(LATENCY_MS - 1);

    const overHttp = await fetchJson(`${http()}/api/v1/events/${CONCERT}/inventory`, {timeoutMs: 5000});
    expect(overHttp.status, overHttp.text).toBe(200);
    expect(overHttp.json.event.id).toBe(CONCERT);
    // Did not wait the injected latency (not a claim about speed).
    expect(overHttp.ms).toBeLessThan(1000);
  });

  it('error rate 1 on the HTTP door only: HTTP calls fail 503, gRPC keeps its own latency and succeeds', async () => {
    const changed = await putFaults({error_rate: 1, door: 'http', latency: 0});
    expect(changed.status, changed.text).toBe(200);
    expect(changed.json).toEqual({
      latency_ms: null,
      error_rate: null,
      doors: {grpc: {latency_ms: LATENCY_MS, error_rate: 0}, http: {latency_ms: 0, error_rate: 1}},
    });
    for (let i = 0; i < 3; i++) {
      const failed = await fetchJson(`${http()}/api/v1/events/${CONCERT}/inventory`);
      expect(failed.status).toBe(503);
      expect(failed.json.error.code).toBe('UNAVAILABLE');
    }
    await putFaults({latency: 0, door: 'grpc'});
    expect((await grpcCallMs(5000)).error).toBeNull();
  });

  it('no door means both: the old shape answers, both doors equal', async () => {
    const changed = await putFaults({latency: '5ms', error_rate: 0});
    expect(changed.status, changed.text).toBe(200);
    expect(changed.json).toEqual({
      latency_ms: 5,
      error_rate: 0,
      doors: {grpc: {latency_ms: 5, error_rate: 0}, http: {latency_ms: 5, error_rate: 0}},
    });
    expect(running.faults.current).toEqual({grpc: {latencyMs: 5, errorRate: 0}, http: {latencyMs: 5, errorRate: 0}});
  });

  it('refuses bad input with a 400 that says what to send, and changes nothing', async () => {
    const before = await getFaults();
    const cases: Array<[unknown, RegExp]> = [
      [{latency: '1s', door: 'tcp'}, /door "tcp" is not one of grpc, http, both/],
      [{latency: '1s', dor: 'grpc'}, /Unknown field "dor"/],
      [[{latency: '1s'}], /not a JSON object/],
      [{error_rate: true}, /error_rate true is not a number from 0 to 1/],
      [{error_rate: 1.5, door: 'grpc'}, /error.?rate/],
      [{latency: 'soon', door: 'http'}, /latency "soon"/],
    ];
    for (const [body, says] of cases) {
      const refused = await putFaults(body);
      expect.soft(refused.status, `PUT ${JSON.stringify(body)} -> ${refused.text}`).toBe(400);
      expect.soft(refused.json.error?.message, `PUT ${JSON.stringify(body)}`).toMatch(says);
      expect.soft(refused.json.error?.message, `PUT ${JSON.stringify(body)}`).toContain('"door": "grpc"');
      expect(await getFaults()).toEqual(before);
    }
  });
});

describe('Faults', () => {
  it('set at start for one door: the other door gets none', () => {
    expect(new Faults({latencyMs: 50, errorRate: 0.5}, 'http').current).toEqual({
      grpc: {latencyMs: 0, errorRate: 0},
      http: {latencyMs: 50, errorRate: 0.5},
    });
  });

  it('an update refused for one door leaves both as they were', () => {
    const faults = new Faults({latencyMs: 10, errorRate: 0});
    expect(() => faults.update({errorRate: 2}, 'both')).toThrow(/error rate/);
    expect(faults.current).toEqual({grpc: {latencyMs: 10, errorRate: 0}, http: {latencyMs: 10, errorRate: 0}});
  });
});
