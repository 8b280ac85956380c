/**
 * What the circuit breaker counts: only the backend failing (5xx, no answer). A backend refusing the
 * request for itself (too large, over a quota) never opens the circuit, and a call whose caller has
 * already left is not sent. A real HTTP server on loopback plays the backend; the client is the
 * gateway's own BackendClient over HttpTransport.
 */
import {createServer, type Server} from 'node:http';
import type {AddressInfo} from 'node:net';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {Registry} from 'prom-client';
import {BackendClient} from '../../src/services/backends/backend-client.js';
import {BackendMetrics} from '../../src/services/backends/backend-metrics.js';
import {backendDidNothing} from '../../src/services/backends/errors.js';
import {RESERVATION_ROUTES} from '../../src/services/backends/routes.js';
import {GrpcTransport, HttpTransport} from '../../src/services/backends/transports.js';
import {TacosError} from '../../src/services/errors.js';
import {loadContractSet} from '../../src/services/contracts.js';
import {packageDefinition} from '../../src/services/server-kit/grpc/server.js';
import {createLogger} from '../../src/services/logging.js';

const FAILURES = 2;
const INVENTORY = 'reservation.v1.InventoryService';

/** What the backend answers next: a status and a body. */
let answer: {status: number; body: string} = {status: 200, body: '{}'};
let received = 0;
let server: Server | undefined;
let client: BackendClient | undefined;

beforeAll(async () => {
  server = createServer((request, response) => {
    received++;
    request.resume();
    request.on('end', () => response.writeHead(answer.status, {'content-type': 'application/json'}).end(answer.body));
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const base = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  const contracts = await loadContractSet();
  const metrics = new BackendMetrics(new Registry());
  // The gRPC road is there but never taken (share 0): its channel connects only on first use.
  client = new BackendClient(
    {name: 'reservation', timeoutMs: 5000, breakerFailures: FAILURES, breakerCooldownMs: 60_000},
    {
      grpc: new GrpcTransport('reservation', '127.0.0.1:1', packageDefinition(), contracts.registry, 1000, metrics),
      http: new HttpTransport(
        'reservation',
        base,
        RESERVATION_ROUTES,
        packageDefinition(),
        contracts.registry,
        metrics,
      ),
    },
    {grpcShare: () => 0, record: () => undefined},
    metrics,
    createLogger('test', 'silent'),
  );
});

afterAll(async () => {
  await client?.close();
  await new Promise((resolve) => server?.close(resolve));
});

async function inventory(signal?: AbortSignal): Promise<TacosError> {
  try {
    await client!.call(INVENTORY, 'GetInventoryStatus', {event_id: 'evt_x'}, {requestId: 'r', signal});
  } catch (error) {
    if (error instanceof TacosError) return error;
    throw error;
  }
  throw new Error('expected the call to fail');
}

describe('the circuit breaker', () => {
  it('never opens for requests the backend refuses for themselves (413 from a proxy, 429 in an envelope), and opens for 5xx', async () => {
    const refusals = [
      {status: 413, body: '<html>Request Entity Too Large</html>'},
      {status: 429, body: JSON.stringify({error: {code: 'RATE_LIMITED', message: 'slow down'}})},
      {status: 431, body: ''},
    ];
    for (const refusal of refusals) {
      answer = refusal;
      for (let call = 1; call <= FAILURES + 1; call++) {
        const before = received;
        const error = await inventory();
        expect(error.code, `${refusal.status}, call ${call}`).toBe('UPSTREAM_REFUSED');
        expect(backendDidNothing(error)).toBe(true);
        expect(received, 'the call reached the backend: the circuit is closed').toBe(before + 1);
      }
    }

    answer = {status: 500, body: JSON.stringify({error: {code: 'INTERNAL', message: 'boom'}})};
    for (let call = 1; call <= FAILURES; call++) expect((await inventory()).code).toBe('UPSTREAM_ERROR');
    const before = received;
    expect((await inventory()).code).toBe('UNAVAILABLE');
    expect(received, 'refused by the open circuit without calling').toBe(before);
  });

  it('does not send a call whose caller has already left', async () => {
    const before = received;
    const gone = AbortSignal.abort();
    const error = await inventory(gone);
    expect(error.code).toBe('CANCELLED');
    expect(backendDidNothing(error)).toBe(true);
    expect(received).toBe(before);
  });
});
