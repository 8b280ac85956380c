/**
 * The payment mock's domain logic, handler by handler, with requests shaped as @grpc/proto-loader
 * makes them (snake_case, enum names, int64 strings, defaults filled). Webhooks go to a real
 * node:http server on 127.0.0.1. Every wait is bounded.
 */
import {createHmac} from 'node:crypto';
import {createServer, type IncomingHttpHeaders, type Server} from 'node:http';
import type {AddressInfo} from 'node:net';
import {afterEach, describe, expect, it, vi} from 'vitest';
import {PAYMENT_ROUTES} from '../../src/services/backends/routes.js';
import {TacosError} from '../../src/services/errors.js';
import type {MockCallContext} from '../../src/services/mocks/mock-definition.js';
import {
  createPaymentMock,
  type PaymentMock,
  type PaymentMockOptions,
} from '../../src/services/mocks/payment/payment-mock.js';
import {SETTLE_AT_ONCE_TAG} from '../../src/services/settle-at-once.js';

const SECRET = 'test-webhook-secret';
const SERVICE = 'payment.v1.PaymentService';
const METHODS = [
  'CreatePaymentIntent',
  'ProcessPayment',
  'GetPaymentStatus',
  'CancelPayment',
  'ListPayments',
  'SimulateWebhook',
];

const mocks: PaymentMock[] = [];
const receivers: Receiver[] = [];

afterEach(async () => {
  for (const mock of mocks.splice(0)) mock.close();
  await Promise.all(receivers.splice(0).map((receiver) => receiver.close()));
});

/** Webhooks may go to this file's receivers (on 127.0.0.1), allowed explicitly as a user would. */
const RECEIVER_HOSTS = ['127.0.0.1', 'localhost'];

function startMock(options: Partial<PaymentMockOptions> = {}): PaymentMock {
  const mock = createPaymentMock({
    defaultScenario: 'APPROVE',
    delayMs: 200,
    seed: 42,
    randomApproveRate: 0.5,
    webhookSecret: SECRET,
    webhookAllowHosts: RECEIVER_HOSTS,
    ...options,
  });
  mocks.push(mock);
  return mock;
}

type Api = Record<(typeof METHODS)[number], (request: object, context?: MockCallContext) => Promise<any>>;

/** The service's handlers, each called with a fresh context unless one is given. */
function api(mock: PaymentMock): Api {
  const handlers = mock.services[SERVICE];
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion -- fromEntries cannot type known keys
  return Object.fromEntries(
    METHODS.map((method) => [
      method,
      (request: object, context?: MockCallContext) => handlers[method](request, context ?? callContext()),
    ]),
  ) as Api;
}

function callContext(signal: AbortSignal = new AbortController().signal): MockCallContext {
  return {protocol: 'grpc', signal, requestId: 't'};
}

/** A CreatePaymentIntentRequest as proto-loader delivers it (defaults filled, unset messages null). */
function intentRequest(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    reservation_id: 'rsv_1',
    amount: {amount: '150000', currency: 'KRW'},
    user_id: 'user-1',
    method: 'PAYMENT_METHOD_CREDIT_CARD',
    scenario: 'PAYMENT_SCENARIO_UNSPECIFIED',
    webhook_url: '',
    idempotency_key: '',
    metadata: null,
    ...extra,
  };
}

function processRequest(id: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {payment_intent_id: id, payment_details: null, idempotency_key: '', ...extra};
}

function cancelRequest(id: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {payment_intent_id: id, reason: '', refund_amount: null, idempotency_key: '', ...extra};
}

function webhookRequest(id: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    payment_intent_id: id,
    target_status: 'PAYMENT_STATUS_COMPLETED',
    delay_seconds: 0,
    force_trigger: false,
    ...extra,
  };
}

async function expectError(promise: Promise<unknown>, code: string, field?: string): Promise<TacosError> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  expect(caught, `expected a ${code} error`).toBeInstanceOf(TacosError);
  const error = caught as TacosError;
  expect(error.code, error.message).toBe(code);
  if (field !== undefined) expect(error.field).toBe(field);
  return error;
}

/** Creates an intent and returns its id. */
async function createIntent(mock: PaymentMock, extra: Record<string, unknown> = {}): Promise<string> {
  const answer = await api(mock).CreatePaymentIntent(intentRequest(extra));
  return answer.payment_intent_id as string;
}

async function statusOf(mock: PaymentMock, id: string): Promise<string> {
  return (await api(mock).GetPaymentStatus({payment_intent_id: id, user_id: ''})).payment.status;
}

function seconds(ts: {seconds: string; nanos: number}): number {
  return Number(ts.seconds) + ts.nanos / 1e9;
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Whether a promise is still unsettled after ms. */
async function stillPending(promise: Promise<unknown>, ms: number): Promise<boolean> {
  const marker = Symbol('pending');
  const result = await Promise.race([
    promise.then(
      () => 'settled',
      () => 'settled',
    ),
    new Promise((resolve) => setTimeout(() => resolve(marker), ms)),
  ]);
  return result === marker;
}

interface Delivery {
  headers: IncomingHttpHeaders;
  raw: Buffer;
  json: any;
}

interface Receiver {
  url: string;
  received: Delivery[];
  close(): Promise<void>;
}

/** A webhook receiver on 127.0.0.1:0 that answers every POST with `status`. */
async function startReceiver(status = 200): Promise<Receiver> {
  const received: Delivery[] = [];
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const raw = Buffer.concat(chunks);
      received.push({headers: request.headers, raw, json: JSON.parse(raw.toString('utf8'))});
      response.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const {port} = server.address() as AddressInfo;
  const receiver: Receiver = {
    url: `http://127.0.0.1:${port}/hooks`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  receivers.push(receiver);
  return receiver;
}

function expectSigned(delivery: Delivery): void {
  expect(delivery.headers['content-type']).toBe('application/json');
  const expected = `sha256=${createHmac('sha256', SECRET).update(delivery.raw).digest('hex')}`;
  expect(delivery.headers['x-webhook-signature']).toBe(expected);
}

describe('the payment mock definition', () => {
  it('is named payment, serves all six methods of payment.v1.PaymentService, and carries the payment routes', () => {
    const mock = startMock();
    expect(mock.name).toBe('payment');
    expect(Object.keys(mock.services)).toEqual([SERVICE]);
    expect(Object.keys(mock.services[SERVICE]).sort()).toEqual([...METHODS].sort());
    expect(mock.routes).toEqual(PAYMENT_ROUTES);
  });

  it('refuses options that make no sense', () => {
    expect(() =>
      createPaymentMock({
        defaultScenario: 'SOMETIMES' as never,
        delayMs: 0,
        seed: 1,
        randomApproveRate: 0.5,
        webhookSecret: SECRET,
      }),
    ).toThrow(/scenario/);
    expect(() =>
      createPaymentMock({
        defaultScenario: 'RANDOM',
        delayMs: 0,
        seed: 1,
        randomApproveRate: 1.5,
        webhookSecret: SECRET,
      }),
    ).toThrow(/approve rate/);
    expect(() =>
      createPaymentMock({
        defaultScenario: 'DELAY',
        delayMs: -1,
        seed: 1,
        randomApproveRate: 0.5,
        webhookSecret: SECRET,
      }),
    ).toThrow(/delay/);
  });

  it('close() is safe twice', () => {
    const mock = startMock();
    mock.close();
    expect(() => mock.close()).not.toThrow();
  });
});

describe('CreatePaymentIntent', () => {
  it(`settles an intent tagged ${SETTLE_AT_ONCE_TAG} by itself, by its scenario; an untagged one waits for ProcessPayment`, async () => {
    const mock = startMock({delayMs: 200});
    const tagged = (scenario: string) => ({
      scenario,
      metadata: {
        source: 'web',
        user_agent: '',
        ip_address: '',
        session_id: '',
        scenario: 'PAYMENT_SCENARIO_UNSPECIFIED',
        tags: {[SETTLE_AT_ONCE_TAG]: 'true'},
      },
    });
    const approved = await api(mock).CreatePaymentIntent(intentRequest(tagged('PAYMENT_SCENARIO_APPROVE')));
    // The answer is the intent as created; it settles right after.
    expect(approved.status).toBe('PAYMENT_STATUS_PENDING');
    const declined = await createIntent(mock, tagged('PAYMENT_SCENARIO_FAIL'));
    const delayed = await createIntent(mock, tagged('PAYMENT_SCENARIO_DELAY'));
    const untagged = await createIntent(mock, {scenario: 'PAYMENT_SCENARIO_APPROVE'});
    // Bounded: 3 s at most per intent.
    const settled = async (id: string): Promise<string> => {
      for (let attempt = 0; attempt < 300; attempt++) {
        const status = await statusOf(mock, id);
        if (status !== 'PAYMENT_STATUS_PENDING' && status !== 'PAYMENT_STATUS_PROCESSING') return status;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      throw new Error(`payment ${id} did not settle`);
    };
    expect(await settled(approved.payment_intent_id)).toBe('PAYMENT_STATUS_COMPLETED');
    expect(await settled(declined)).toBe('PAYMENT_STATUS_FAILED');
    expect(await settled(delayed)).toBe('PAYMENT_STATUS_COMPLETED');
    expect(await statusOf(mock, untagged)).toBe('PAYMENT_STATUS_PENDING');
  });

  it('returns a pending intent with an id, a client secret, a payment URL and a 15-minute expiry', async () => {
    const clock = 1_750_000_000_123;
    const mock = startMock({now: () => clock});
    const answer = await api(mock).CreatePaymentIntent(intentRequest());
    expect(answer.payment_intent_id).toMatch(/^pi_[0-9a-f]+$/);
    expect(answer.status).toBe('PAYMENT_STATUS_PENDING');
    expect(answer.client_secret).toMatch(new RegExp(`^${answer.payment_intent_id}_secret_[0-9a-f]+$`));
    expect(answer.payment_url).toContain(answer.payment_intent_id);
    expect(answer.expires_at).toEqual({seconds: String(Math.floor((clock + 15 * 60_000) / 1000)), nanos: 123_000_000});
    expect(answer.error).toBeNull();
    const other = await api(mock).CreatePaymentIntent(intentRequest());
    expect(other.payment_intent_id).not.toBe(answer.payment_intent_id);
  });

  it('requires a reservation_id and a positive amount with a currency', async () => {
    const create = api(startMock()).CreatePaymentIntent;
    await expectError(create(intentRequest({reservation_id: ''})), 'INVALID_ARGUMENT', 'reservation_id');
    await expectError(create(intentRequest({amount: null})), 'INVALID_ARGUMENT', 'amount');
    await expectError(create(intentRequest({amount: {amount: '0', currency: 'KRW'}})), 'INVALID_ARGUMENT', 'amount');
    await expectError(create(intentRequest({amount: {amount: '-500', currency: 'KRW'}})), 'INVALID_ARGUMENT', 'amount');
    await expectError(create(intentRequest({amount: {amount: '500', currency: ''}})), 'INVALID_ARGUMENT', 'amount');
  });

  it('takes the scenario from the request, else from metadata.scenario, else the default', async () => {
    const mock = startMock({defaultScenario: 'FAIL'});
    const {ProcessPayment, GetPaymentStatus} = api(mock);
    const fromRequest = await createIntent(mock, {
      scenario: 'PAYMENT_SCENARIO_APPROVE',
      metadata: {scenario: 'PAYMENT_SCENARIO_FAIL', tags: {}},
    });
    const fromMetadata = await createIntent(mock, {
      metadata: {
        source: 'web',
        user_agent: '',
        ip_address: '',
        session_id: '',
        scenario: 'PAYMENT_SCENARIO_APPROVE',
        tags: {},
      },
    });
    const fromDefault = await createIntent(mock);
    expect((await ProcessPayment(processRequest(fromRequest))).status).toBe('PAYMENT_STATUS_COMPLETED');
    expect((await ProcessPayment(processRequest(fromMetadata))).status).toBe('PAYMENT_STATUS_COMPLETED');
    expect((await ProcessPayment(processRequest(fromDefault))).status).toBe('PAYMENT_STATUS_FAILED');
    // The payment records the scenario it ran with.
    const payment = (await GetPaymentStatus({payment_intent_id: fromDefault, user_id: ''})).payment;
    expect(payment.metadata.scenario).toBe('PAYMENT_SCENARIO_FAIL');
  });

  it('answers a repeated idempotency_key with the first answer, and a different request under it with IDEMPOTENCY_CONFLICT', async () => {
    const mock = startMock();
    const {CreatePaymentIntent, ListPayments} = api(mock);
    const first = await CreatePaymentIntent(intentRequest({idempotency_key: 'key-1'}));
    const again = await CreatePaymentIntent(intentRequest({idempotency_key: 'key-1'}));
    expect(again).toEqual(first);
    await expectError(
      CreatePaymentIntent(intentRequest({idempotency_key: 'key-1', amount: {amount: '999', currency: 'KRW'}})),
      'IDEMPOTENCY_CONFLICT',
    );
    // A request without a key is a new intent every time.
    const fresh = await CreatePaymentIntent(intentRequest());
    expect(fresh.payment_intent_id).not.toBe(first.payment_intent_id);
    expect(
      (await ListPayments({user_id: '', status: 'PAYMENT_STATUS_UNSPECIFIED', reservation_id: '', pagination: null}))
        .page_info.total_count,
    ).toBe(2);
  });
});

/** A resolver answering from `names` (a list of addresses, or one per call in turn); others are unknown. */
function fakeDns(names: Record<string, string[] | string[][]>) {
  const calls = new Map<string, number>();
  return async (hostname: string) => {
    const answers = names[hostname];
    if (!answers) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), {code: 'ENOTFOUND'});
    const call = calls.get(hostname) ?? 0;
    calls.set(hostname, call + 1);
    const addresses = Array.isArray(answers[0])
      ? (answers as string[][])[Math.min(call, answers.length - 1)]
      : (answers as string[]);
    return addresses.map((address) => ({address, family: address.includes(':') ? 6 : 4}));
  };
}

describe('webhook_url targets', () => {
  const LOCAL_FORMS = [
    'http://127.0.0.1:6379/hook',
    'http://127.1:6379/hook',
    'http://2130706433:6379/hook',
    'http://0x7f000001:6379/hook',
    'http://017700000001:6379/hook',
    'http://[::1]:6379/hook',
    'http://[::ffff:127.0.0.1]:6379/hook',
    'http://0.0.0.0:6379/hook',
    'http://[::]:6379/hook',
    'http://10.0.0.1/hook',
    'https://192.168.1.20/hook',
    'http://172.16.0.1/hook',
    'http://169.254.169.254/latest/meta-data',
    'http://[fe80::1]/hook',
    'http://[fd00::1]/hook',
    'http://224.0.0.1/hook',
    'http://100.64.0.1/hook',
  ];

  it('refuses every loopback, private, link-local, unspecified and multicast address, in every numeric form, by default', async () => {
    const create = api(
      startMock({webhookAllowHosts: [], allowAnyWebhookHost: true, resolveWebhookHost: fakeDns({})}),
    ).CreatePaymentIntent;
    for (const url of LOCAL_FORMS) {
      const error = await expectError(create(intentRequest({webhook_url: url})), 'INVALID_ARGUMENT', 'webhook_url');
      expect(error.message, url).toMatch(/PAYMENT_WEBHOOK_ALLOW_HOSTS/);
    }
  });

  it('refuses a host name that resolves to a local address, or to several of which one is local; names the host, not the address', async () => {
    const create = api(
      startMock({
        webhookAllowHosts: [],
        allowAnyWebhookHost: true,
        resolveWebhookHost: fakeDns({
          'rebind.example': ['127.0.0.1'],
          'mixed.example': ['93.184.215.14', '10.0.0.7'],
          localhost: ['::1', '127.0.0.1'],
          'localhost.': ['127.0.0.1'],
        }),
      }),
    ).CreatePaymentIntent;
    for (const url of [
      'http://rebind.example/hook',
      'http://mixed.example/hook',
      'http://localhost:6379/hook',
      'http://LOCALHOST./hook',
    ]) {
      const error = await expectError(create(intentRequest({webhook_url: url})), 'INVALID_ARGUMENT', 'webhook_url');
      expect(error.message, url).toMatch(/resolves to a (loopback|private) address/);
      expect(error.message, url).not.toMatch(/127\.0\.0\.1|10\.0\.0\.7|::1/);
    }
    await expectError(
      create(intentRequest({webhook_url: 'http://nowhere.example/hook'})),
      'INVALID_ARGUMENT',
      'webhook_url',
    );
  });

  it('takes public hosts only with allowAnyWebhookHost (PAYMENT_WEBHOOK_ALLOW_ANY_HOST), and never other schemes or bad URLs', async () => {
    const dns = fakeDns({'example.com': ['93.184.215.14', '2606:2800:21f:cb07:6820:80da:af6b:8b2c']});
    const closed = api(startMock({webhookAllowHosts: [], resolveWebhookHost: dns})).CreatePaymentIntent;
    await expectError(
      closed(intentRequest({webhook_url: 'https://example.com/hook'})),
      'INVALID_ARGUMENT',
      'webhook_url',
    );
    await expectError(closed(intentRequest({webhook_url: 'http://8.8.8.8/hook'})), 'INVALID_ARGUMENT', 'webhook_url');
    const open = api(
      startMock({webhookAllowHosts: [], allowAnyWebhookHost: true, resolveWebhookHost: dns}),
    ).CreatePaymentIntent;
    for (const url of ['https://example.com/hook', 'http://8.8.8.8/hook']) {
      expect((await open(intentRequest({webhook_url: url}))).status, url).toBe('PAYMENT_STATUS_PENDING');
    }
    for (const url of [
      'http://127.0.0.1@evil.example/hook',
      'ftp://example.com/hook',
      'file:///etc/passwd',
      'not a url',
    ]) {
      await expectError(open(intentRequest({webhook_url: url})), 'INVALID_ARGUMENT', 'webhook_url');
    }
  });

  it('takes what webhookAllowHosts (PAYMENT_WEBHOOK_ALLOW_HOSTS) lists: an address in any form, a CIDR range, a name', async () => {
    const dns = fakeDns({'hooks.internal': ['10.9.9.9'], 'other.internal': ['192.168.0.9']});
    const create = api(
      startMock({webhookAllowHosts: ['127.0.0.1', '10.0.0.0/8', 'Receiver.Test'], resolveWebhookHost: dns}),
    ).CreatePaymentIntent;
    for (const url of [
      'http://127.0.0.1:9/hook',
      'http://127.1:9/hook',
      'http://2130706433:9/hook',
      'http://10.1.2.3/hook',
      'http://hooks.internal/hook',
      'http://receiver.test/hook',
    ]) {
      expect((await create(intentRequest({webhook_url: url}))).status, url).toBe('PAYMENT_STATUS_PENDING');
    }
    for (const url of [
      'http://127.0.0.2:9/hook',
      'http://[::1]:9/hook',
      'http://192.168.0.9/hook',
      'http://other.internal/hook',
      'http://localhost:9/hook',
    ]) {
      await expectError(create(intentRequest({webhook_url: url})), 'INVALID_ARGUMENT', 'webhook_url');
    }
  });

  it('delivers through the addresses it checked: a listed name reaches its receiver, and a name that turns local after the check gets nothing', async () => {
    const receiver = await startReceiver();
    const port = new URL(receiver.url).port;
    const listed = startMock({
      webhookAllowHosts: ['receiver.test'],
      resolveWebhookHost: fakeDns({'receiver.test': ['127.0.0.1']}),
    });
    const id = await createIntent(listed, {webhook_url: `http://receiver.test:${port}/hooks`});
    await api(listed).ProcessPayment(processRequest(id));
    await listed.webhooksIdle();
    expect(listed.webhooksDelivered).toBe(1);
    expect(receiver.received).toHaveLength(1);

    // Public at the intent's check (and at the delivery's), this machine when connecting: refused.
    const rebinding = fakeDns({'rebind.example': [['93.184.215.14'], ['93.184.215.14'], ['127.0.0.1']]});
    const open = startMock({webhookAllowHosts: [], allowAnyWebhookHost: true, resolveWebhookHost: rebinding});
    const rebound = await createIntent(open, {webhook_url: `http://rebind.example:${port}/hooks`});
    await api(open).ProcessPayment(processRequest(rebound));
    await open.webhooksIdle();
    expect(open.webhookFailures).toBe(1);
    expect(receiver.received).toHaveLength(1);
  });
});

describe('ProcessPayment', () => {
  it('APPROVE completes the payment with a transaction id and code 200', async () => {
    const mock = startMock({defaultScenario: 'APPROVE'});
    const id = await createIntent(mock);
    const answer = await api(mock).ProcessPayment(processRequest(id));
    expect(answer.status).toBe('PAYMENT_STATUS_COMPLETED');
    expect(answer.payment_id).toMatch(/^pay_/);
    expect(answer.transaction_id).toMatch(/^txn_[0-9a-f]+$/);
    expect(answer.result).toMatchObject({success: true, failure_reason: '', response_code: 200});
    expect(answer.processed_at).toEqual({seconds: expect.any(String), nanos: expect.any(Number)});
    expect(answer.error).toBeNull();
    expect(await statusOf(mock, id)).toBe('PAYMENT_STATUS_COMPLETED');
  });

  it('FAIL answers successfully with a FAILED payment, a decline reason and code 402', async () => {
    const mock = startMock({defaultScenario: 'FAIL'});
    const id = await createIntent(mock);
    const answer = await api(mock).ProcessPayment(processRequest(id));
    expect(answer.status).toBe('PAYMENT_STATUS_FAILED');
    expect(answer.result).toMatchObject({success: false, failure_reason: 'card_declined', response_code: 402});
    expect(await statusOf(mock, id)).toBe('PAYMENT_STATUS_FAILED');
  });

  it('DELAY answers after delayMs, showing PROCESSING meanwhile, then approves', async () => {
    const mock = startMock({defaultScenario: 'DELAY', delayMs: 200});
    const id = await createIntent(mock);
    const started = performance.now();
    const processing = api(mock).ProcessPayment(processRequest(id));
    expect(await statusOf(mock, id)).toBe('PAYMENT_STATUS_PROCESSING');
    const answer = await processing;
    // Timers may fire up to a millisecond early by performance.now().
    expect(performance.now() - started).toBeGreaterThanOrEqual(199);
    expect(answer.status).toBe('PAYMENT_STATUS_COMPLETED');
  });

  it('DELAY stops waiting when the caller gives up, and the intent is pending again', async () => {
    const mock = startMock({defaultScenario: 'DELAY', delayMs: 10_000});
    const id = await createIntent(mock);
    const caller = new AbortController();
    const started = performance.now();
    const processing = api(mock).ProcessPayment(processRequest(id), callContext(caller.signal));
    setTimeout(() => caller.abort(), 50);
    await expectError(processing, 'UPSTREAM_TIMEOUT');
    expect(performance.now() - started).toBeLessThan(2000);
    expect(await statusOf(mock, id)).toBe('PAYMENT_STATUS_PENDING');
  });

  it('TIMEOUT never answers before the caller gives up, then fails with UPSTREAM_TIMEOUT', async () => {
    const mock = startMock({defaultScenario: 'TIMEOUT'});
    const id = await createIntent(mock);
    const caller = new AbortController();
    const processing = api(mock).ProcessPayment(processRequest(id), callContext(caller.signal));
    const failure = expectError(processing, 'UPSTREAM_TIMEOUT');
    expect(await stillPending(processing, 300)).toBe(true);
    expect(await statusOf(mock, id)).toBe('PAYMENT_STATUS_PROCESSING');
    caller.abort();
    await failure;
    // Nothing was charged: it can be processed (or cancelled) again.
    expect(await statusOf(mock, id)).toBe('PAYMENT_STATUS_PENDING');
  });

  it('TIMEOUT gives up by itself at timeoutCapMs when the caller has no deadline', async () => {
    const mock = startMock({defaultScenario: 'TIMEOUT', timeoutCapMs: 150});
    const id = await createIntent(mock);
    const started = performance.now();
    await expectError(api(mock).ProcessPayment(processRequest(id)), 'UPSTREAM_TIMEOUT');
    expect(performance.now() - started).toBeGreaterThanOrEqual(149);
  });

  it('close() releases a call waiting in TIMEOUT', async () => {
    const mock = startMock({defaultScenario: 'TIMEOUT'});
    const id = await createIntent(mock);
    const processing = api(mock).ProcessPayment(processRequest(id));
    const failure = expectError(processing, 'UNAVAILABLE');
    expect(await stillPending(processing, 50)).toBe(true);
    mock.close();
    await failure;
  });

  it('RANDOM: the same seed gives the same outcomes, another seed a different sequence', async () => {
    const outcomes = async (seed: number): Promise<string[]> => {
      const mock = startMock({defaultScenario: 'RANDOM', seed, randomApproveRate: 0.5});
      const statuses: string[] = [];
      for (let i = 0; i < 20; i++) {
        const id = await createIntent(mock);
        statuses.push((await api(mock).ProcessPayment(processRequest(id))).status);
      }
      return statuses;
    };
    const first = await outcomes(42);
    expect(await outcomes(42)).toEqual(first);
    expect(await outcomes(7)).not.toEqual(first);
    expect(new Set(first)).toEqual(new Set(['PAYMENT_STATUS_COMPLETED', 'PAYMENT_STATUS_FAILED']));
  });

  it('RANDOM follows randomApproveRate at its extremes', async () => {
    for (const [rate, expected] of [
      [1, 'PAYMENT_STATUS_COMPLETED'],
      [0, 'PAYMENT_STATUS_FAILED'],
    ] as const) {
      const mock = startMock({defaultScenario: 'RANDOM', randomApproveRate: rate});
      for (let i = 0; i < 5; i++) {
        expect((await api(mock).ProcessPayment(processRequest(await createIntent(mock)))).status).toBe(expected);
      }
    }
  });

  it('refuses an unknown intent with NOT_FOUND and a second processing with FAILED_PRECONDITION', async () => {
    const mock = startMock();
    const {ProcessPayment} = api(mock);
    await expectError(ProcessPayment(processRequest('pi_missing')), 'NOT_FOUND');
    await expectError(ProcessPayment(processRequest('')), 'INVALID_ARGUMENT', 'payment_intent_id');
    const id = await createIntent(mock);
    await ProcessPayment(processRequest(id));
    await expectError(ProcessPayment(processRequest(id)), 'FAILED_PRECONDITION');
  });

  it('repeats the first answer for the idempotency_key of the first process call', async () => {
    const mock = startMock();
    const {ProcessPayment} = api(mock);
    const id = await createIntent(mock);
    const first = await ProcessPayment(processRequest(id, {idempotency_key: 'proc-1'}));
    expect(await ProcessPayment(processRequest(id, {idempotency_key: 'proc-1'}))).toEqual(first);
    await expectError(ProcessPayment(processRequest(id, {idempotency_key: 'proc-2'})), 'FAILED_PRECONDITION');
    const other = await createIntent(mock);
    await expectError(ProcessPayment(processRequest(other, {idempotency_key: 'proc-1'})), 'IDEMPOTENCY_CONFLICT');
  });

  it('a retry with the same key while the first call is still processing gets the same answer', async () => {
    const mock = startMock({defaultScenario: 'DELAY', delayMs: 150});
    const {ProcessPayment} = api(mock);
    const id = await createIntent(mock);
    const [first, retry] = await Promise.all([
      ProcessPayment(processRequest(id, {idempotency_key: 'k'})),
      ProcessPayment(processRequest(id, {idempotency_key: 'k'})),
    ]);
    expect(retry).toEqual(first);
    expect(first.status).toBe('PAYMENT_STATUS_COMPLETED');
  });

  it('refuses an intent past its 15 minutes, which then shows EXPIRED', async () => {
    let clock = 1_750_000_000_000;
    const mock = startMock({now: () => clock});
    const id = await createIntent(mock);
    clock += 15 * 60_000;
    await expectError(api(mock).ProcessPayment(processRequest(id)), 'FAILED_PRECONDITION');
    expect(await statusOf(mock, id)).toBe('PAYMENT_STATUS_EXPIRED');
  });
});

describe('GetPaymentStatus', () => {
  it('returns the whole payment, before and after processing', async () => {
    let clock = 1_750_000_000_000;
    const mock = startMock({now: () => clock});
    const {GetPaymentStatus, ProcessPayment} = api(mock);
    const id = await createIntent(mock, {
      metadata: {
        source: 'web',
        user_agent: 'vitest',
        ip_address: '10.1.2.3',
        session_id: 's1',
        scenario: 'PAYMENT_SCENARIO_UNSPECIFIED',
        tags: {campaign: 'spring'},
      },
    });
    const before = (await GetPaymentStatus({payment_intent_id: id, user_id: 'user-1'})).payment;
    expect(before).toMatchObject({
      payment_intent_id: id,
      payment_id: '',
      reservation_id: 'rsv_1',
      user_id: 'user-1',
      status: 'PAYMENT_STATUS_PENDING',
      amount: {amount: '150000', currency: 'KRW'},
      method: 'PAYMENT_METHOD_CREDIT_CARD',
      created_at: {seconds: '1750000000', nanos: 0},
      updated_at: {seconds: '1750000000', nanos: 0},
      processed_at: null,
      transaction_id: '',
      result: null,
      metadata: {
        source: 'web',
        user_agent: 'vitest',
        ip_address: '10.1.2.3',
        session_id: 's1',
        scenario: 'PAYMENT_SCENARIO_APPROVE',
        tags: {campaign: 'spring'},
      },
    });
    clock += 5000;
    const processed = await ProcessPayment(
      processRequest(id, {
        payment_details: {
          method: 'PAYMENT_METHOD_MOBILE_PAY',
          credit_card: null,
          bank_transfer: null,
          mobile_pay: {provider: 'kakaopay', mobile_number: '010'},
        },
      }),
    );
    const after = (await GetPaymentStatus({payment_intent_id: id, user_id: ''})).payment;
    expect(after).toMatchObject({
      status: 'PAYMENT_STATUS_COMPLETED',
      payment_id: processed.payment_id,
      transaction_id: processed.transaction_id,
      method: 'PAYMENT_METHOD_MOBILE_PAY',
      created_at: {seconds: '1750000000', nanos: 0},
      updated_at: {seconds: '1750000005', nanos: 0},
      processed_at: {seconds: '1750000005', nanos: 0},
      result: {success: true, response_code: 200, processed_at: {seconds: '1750000005', nanos: 0}},
    });
  });

  it("answers NOT_FOUND for an unknown intent and for another user's payment", async () => {
    const mock = startMock();
    const {GetPaymentStatus} = api(mock);
    const id = await createIntent(mock, {user_id: 'alice'});
    const missing = await expectError(GetPaymentStatus({payment_intent_id: 'pi_nope', user_id: ''}), 'NOT_FOUND');
    const foreign = await expectError(GetPaymentStatus({payment_intent_id: id, user_id: 'bob'}), 'NOT_FOUND');
    // The same words as a missing one: nothing tells bob the payment exists.
    expect(foreign.message).toBe(missing.message.replace('pi_nope', id));
    expect((await GetPaymentStatus({payment_intent_id: id, user_id: 'alice'})).payment.user_id).toBe('alice');
  });
});

describe('CancelPayment', () => {
  it('cancels a pending payment without refunding anything', async () => {
    const mock = startMock();
    const id = await createIntent(mock);
    const answer = await api(mock).CancelPayment(cancelRequest(id, {reason: 'changed my mind'}));
    expect(answer).toMatchObject({
      status: 'PAYMENT_STATUS_CANCELLED',
      refunded_amount: {amount: '0', currency: 'KRW'},
      refund_id: '',
      error: null,
    });
    expect(answer.cancelled_at.seconds).toMatch(/^\d+$/);
    expect(await statusOf(mock, id)).toBe('PAYMENT_STATUS_CANCELLED');
  });

  it('refunds a completed payment in full, or the amount asked', async () => {
    const mock = startMock();
    const {CancelPayment, ProcessPayment} = api(mock);
    const full = await createIntent(mock);
    await ProcessPayment(processRequest(full));
    const fullAnswer = await CancelPayment(cancelRequest(full));
    expect(fullAnswer).toMatchObject({
      status: 'PAYMENT_STATUS_REFUNDED',
      refunded_amount: {amount: '150000', currency: 'KRW'},
    });
    expect(fullAnswer.refund_id).toMatch(/^re_[0-9a-f]+$/);
    expect(await statusOf(mock, full)).toBe('PAYMENT_STATUS_REFUNDED');

    const part = await createIntent(mock);
    await ProcessPayment(processRequest(part));
    await expectError(
      CancelPayment(cancelRequest(part, {refund_amount: {amount: '150001', currency: 'KRW'}})),
      'INVALID_ARGUMENT',
      'refund_amount',
    );
    await expectError(
      CancelPayment(cancelRequest(part, {refund_amount: {amount: '100', currency: 'USD'}})),
      'INVALID_ARGUMENT',
      'refund_amount',
    );
    const partAnswer = await CancelPayment(cancelRequest(part, {refund_amount: {amount: '50000', currency: 'KRW'}}));
    expect(partAnswer).toMatchObject({
      status: 'PAYMENT_STATUS_REFUNDED',
      refunded_amount: {amount: '50000', currency: 'KRW'},
    });
  });

  it('refuses failed, cancelled and refunded payments, and unknown ones', async () => {
    const mock = startMock();
    const {CancelPayment, ProcessPayment} = api(mock);
    const failed = await createIntent(mock, {scenario: 'PAYMENT_SCENARIO_FAIL'});
    await ProcessPayment(processRequest(failed));
    await expectError(CancelPayment(cancelRequest(failed)), 'FAILED_PRECONDITION');
    const cancelled = await createIntent(mock);
    await CancelPayment(cancelRequest(cancelled));
    await expectError(CancelPayment(cancelRequest(cancelled)), 'FAILED_PRECONDITION');
    const refunded = await createIntent(mock);
    await ProcessPayment(processRequest(refunded));
    await CancelPayment(cancelRequest(refunded));
    await expectError(CancelPayment(cancelRequest(refunded)), 'FAILED_PRECONDITION');
    await expectError(CancelPayment(cancelRequest('pi_nope')), 'NOT_FOUND');
    // A cancelled intent cannot be processed either.
    await expectError(ProcessPayment(processRequest(cancelled)), 'FAILED_PRECONDITION');
  });

  it('repeats the first answer for a repeated idempotency_key', async () => {
    const mock = startMock();
    const {CancelPayment, ProcessPayment} = api(mock);
    const id = await createIntent(mock);
    await ProcessPayment(processRequest(id));
    const first = await CancelPayment(cancelRequest(id, {idempotency_key: 'refund-1'}));
    expect(await CancelPayment(cancelRequest(id, {idempotency_key: 'refund-1'}))).toEqual(first);
    await expectError(CancelPayment(cancelRequest(id, {idempotency_key: 'refund-2'})), 'FAILED_PRECONDITION');
  });
});

describe('ListPayments', () => {
  const list = (mock: PaymentMock, extra: Record<string, unknown> = {}) =>
    api(mock).ListPayments({
      user_id: '',
      status: 'PAYMENT_STATUS_UNSPECIFIED',
      reservation_id: '',
      pagination: null,
      ...extra,
    });

  it('filters by user, status and reservation, newest first', async () => {
    let clock = 1_750_000_000_000;
    const mock = startMock({now: () => (clock += 1000)});
    const a1 = await createIntent(mock, {user_id: 'alice', reservation_id: 'r1'});
    const a2 = await createIntent(mock, {user_id: 'alice', reservation_id: 'r2'});
    const b1 = await createIntent(mock, {user_id: 'bob', reservation_id: 'r1'});
    await api(mock).ProcessPayment(processRequest(a2));

    const ids = (answer: any) => answer.payments.map((payment: any) => payment.payment_intent_id);
    expect(ids(await list(mock))).toEqual([b1, a2, a1]);
    expect(ids(await list(mock, {user_id: 'alice'}))).toEqual([a2, a1]);
    expect(ids(await list(mock, {status: 'PAYMENT_STATUS_COMPLETED'}))).toEqual([a2]);
    expect(ids(await list(mock, {status: 'PAYMENT_STATUS_PENDING', reservation_id: 'r1'}))).toEqual([b1, a1]);
    expect(ids(await list(mock, {user_id: 'alice', reservation_id: 'r1'}))).toEqual([a1]);
    expect((await list(mock, {user_id: 'carol'})).page_info).toMatchObject({
      total_count: 0,
      has_next_page: false,
      has_previous_page: false,
    });
  });

  it('pages with page and page_size (default 20, at most 100), or with the cursors it returns', async () => {
    const mock = startMock();
    for (let i = 0; i < 105; i++) await createIntent(mock, {reservation_id: `r${i}`});
    const all = await list(mock, {pagination: {page: 0, page_size: 0, cursor: ''}});
    expect(all.payments).toHaveLength(20);
    expect(all.page_info).toMatchObject({
      total_count: 105,
      has_next_page: true,
      has_previous_page: false,
      previous_cursor: '',
    });
    expect(all.payments[0].reservation_id).toBe('r104');

    const capped = await list(mock, {pagination: {page: 1, page_size: 500, cursor: ''}});
    expect(capped.payments).toHaveLength(100);

    const third = await list(mock, {pagination: {page: 3, page_size: 10, cursor: ''}});
    expect(third.payments.map((payment: any) => payment.reservation_id)).toEqual(
      Array.from({length: 10}, (_, i) => `r${84 - i}`),
    );
    expect(third.page_info).toMatchObject({total_count: 105, has_next_page: true, has_previous_page: true});

    const last = await list(mock, {pagination: {page: 11, page_size: 10, cursor: ''}});
    expect(last.payments).toHaveLength(5);
    expect(last.page_info).toMatchObject({has_next_page: false, has_previous_page: true, next_cursor: ''});

    const next = await list(mock, {pagination: {page: 0, page_size: 10, cursor: third.page_info.next_cursor}});
    expect(next.payments[0].reservation_id).toBe('r74');
    const previous = await list(mock, {pagination: {page: 0, page_size: 10, cursor: third.page_info.previous_cursor}});
    expect(previous.payments[0].reservation_id).toBe('r94');

    await expectError(
      list(mock, {pagination: {page: 1, page_size: 10, cursor: 'garbage'}}),
      'INVALID_ARGUMENT',
      'pagination.cursor',
    );
    await expectError(
      list(mock, {pagination: {page: -1, page_size: 10, cursor: ''}}),
      'INVALID_ARGUMENT',
      'pagination.page',
    );
  });
});

describe('webhooks', () => {
  it('POSTs a signed payment.completed event after an approved payment', async () => {
    const receiver = await startReceiver();
    const mock = startMock();
    const id = await createIntent(mock, {webhook_url: receiver.url, reservation_id: 'rsv_w'});
    await api(mock).ProcessPayment(processRequest(id));
    await waitFor(() => receiver.received.length >= 1, 'the webhook');
    const [delivery] = receiver.received;
    expectSigned(delivery);
    expect(delivery.json).toEqual({
      id: expect.stringMatching(/^evt_/),
      type: 'payment.completed',
      created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/),
      data: {
        payment_intent_id: id,
        reservation_id: 'rsv_w',
        status: 'PAYMENT_STATUS_COMPLETED',
        amount: {amount: '150000', currency: 'KRW'},
      },
    });
    await mock.webhooksIdle();
    expect(mock.webhooksDelivered).toBe(1);
    expect(mock.webhookFailures).toBe(0);
  });

  it('POSTs payment.failed after a declined payment, and payment.refunded after a refund', async () => {
    const receiver = await startReceiver();
    const mock = startMock();
    const {CancelPayment, ProcessPayment} = api(mock);
    const failed = await createIntent(mock, {webhook_url: receiver.url, scenario: 'PAYMENT_SCENARIO_FAIL'});
    await ProcessPayment(processRequest(failed));
    await waitFor(() => receiver.received.length >= 1, 'the failure webhook');
    expect(receiver.received[0].json).toMatchObject({
      type: 'payment.failed',
      data: {payment_intent_id: failed, status: 'PAYMENT_STATUS_FAILED'},
    });
    expectSigned(receiver.received[0]);

    const refunded = await createIntent(mock, {webhook_url: receiver.url});
    await ProcessPayment(processRequest(refunded));
    await CancelPayment(cancelRequest(refunded));
    await waitFor(() => receiver.received.length >= 3, 'the refund webhook');
    await mock.webhooksIdle();
    const types = receiver.received
      .filter((delivery) => delivery.json.data.payment_intent_id === refunded)
      .map((delivery) => delivery.json.type);
    expect(types.sort()).toEqual(['payment.completed', 'payment.refunded']);
  });

  it('sends nothing for an intent without a webhook_url', async () => {
    const receiver = await startReceiver();
    const mock = startMock();
    await api(mock).ProcessPayment(processRequest(await createIntent(mock)));
    await mock.webhooksIdle();
    expect(receiver.received).toHaveLength(0);
    expect(mock.webhooksDelivered + mock.webhookFailures).toBe(0);
  });

  it('counts a receiver that errors or is unreachable as a failure, without failing the RPC', async () => {
    const broken = await startReceiver(500);
    const gone = await startReceiver();
    await gone.close();
    const mock = startMock();
    for (const url of [broken.url, gone.url]) {
      const id = await createIntent(mock, {webhook_url: url});
      expect((await api(mock).ProcessPayment(processRequest(id))).status).toBe('PAYMENT_STATUS_COMPLETED');
    }
    await mock.webhooksIdle();
    expect(broken.received).toHaveLength(1);
    expect(mock.webhookFailures).toBe(2);
    expect(mock.webhooksDelivered).toBe(0);
  });

  it('uses options.fetch when given', async () => {
    const calls: {url: string; init: RequestInit}[] = [];
    const fakeFetch = (async (url: string, init: RequestInit) => {
      calls.push({url, init});
      return new Response(null, {status: 204});
    }) as unknown as typeof fetch;
    const mock = startMock({fetch: fakeFetch});
    const id = await createIntent(mock, {webhook_url: 'http://localhost:1/hook'});
    await api(mock).ProcessPayment(processRequest(id));
    await mock.webhooksIdle();
    expect(calls).toHaveLength(1);
    expect(calls[0].url).toBe('http://localhost:1/hook');
    const body = calls[0].init.body as string;
    expect((calls[0].init.headers as Record<string, string>)['X-Webhook-Signature']).toBe(
      `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`,
    );
    expect(mock.webhooksDelivered).toBe(1);
  });
});

describe('SimulateWebhook', () => {
  it('sends at once when delay_seconds is 0, with the webhook_id as the event id', async () => {
    const receiver = await startReceiver();
    const clock = 1_750_000_000_000;
    const mock = startMock({now: () => clock});
    const id = await createIntent(mock, {webhook_url: receiver.url});
    const answer = await api(mock).SimulateWebhook(webhookRequest(id, {target_status: 'PAYMENT_STATUS_PROCESSING'}));
    expect(answer).toMatchObject({
      webhook_sent: true,
      webhook_id: expect.stringMatching(/^evt_/),
      scheduled_at: {seconds: '1750000000', nanos: 0},
      error: null,
    });
    // Sent before the answer: already received.
    expect(receiver.received).toHaveLength(1);
    expect(receiver.received[0].json).toMatchObject({
      id: answer.webhook_id,
      type: 'payment.processing',
      data: {status: 'PAYMENT_STATUS_PROCESSING'},
    });
    expectSigned(receiver.received[0]);
    // Without force_trigger the intent's own status does not move.
    expect(await statusOf(mock, id)).toBe('PAYMENT_STATUS_PENDING');
  });

  it('with force_trigger moves the intent to the target status, even from a final state', async () => {
    const receiver = await startReceiver();
    const mock = startMock();
    const {SimulateWebhook, GetPaymentStatus} = api(mock);
    const id = await createIntent(mock, {webhook_url: receiver.url});
    const answer = await SimulateWebhook(
      webhookRequest(id, {target_status: 'PAYMENT_STATUS_COMPLETED', force_trigger: true}),
    );
    expect(answer.webhook_sent).toBe(true);
    const payment = (await GetPaymentStatus({payment_intent_id: id, user_id: ''})).payment;
    expect(payment.status).toBe('PAYMENT_STATUS_COMPLETED');
    // A forced outcome looks processed to whoever reads it.
    expect(payment.result).toMatchObject({success: true, response_code: 200});

    await expectError(
      SimulateWebhook(webhookRequest(id, {target_status: 'PAYMENT_STATUS_REFUNDED'})),
      'FAILED_PRECONDITION',
    );
    await SimulateWebhook(webhookRequest(id, {target_status: 'PAYMENT_STATUS_REFUNDED', force_trigger: true}));
    expect(await statusOf(mock, id)).toBe('PAYMENT_STATUS_REFUNDED');
    expect(receiver.received.map((delivery) => delivery.json.type)).toEqual(['payment.completed', 'payment.refunded']);
  });

  it('schedules a delayed webhook, sent after delay_seconds', async () => {
    const receiver = await startReceiver();
    const mock = startMock();
    const id = await createIntent(mock, {webhook_url: receiver.url});
    const before = Date.now();
    const answer = await api(mock).SimulateWebhook(
      webhookRequest(id, {delay_seconds: 1, target_status: 'PAYMENT_STATUS_FAILED', force_trigger: true}),
    );
    expect(answer.webhook_sent).toBe(false);
    expect(seconds(answer.scheduled_at) * 1000).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 + 1000);
    expect(await statusOf(mock, id)).toBe('PAYMENT_STATUS_PENDING');
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(receiver.received).toHaveLength(0);
    await waitFor(() => receiver.received.length === 1, 'the delayed webhook');
    expect(Date.now() - before).toBeGreaterThanOrEqual(990);
    expect(receiver.received[0].json).toMatchObject({id: answer.webhook_id, type: 'payment.failed'});
    expect(await statusOf(mock, id)).toBe('PAYMENT_STATUS_FAILED');
  });

  it('close() cancels scheduled webhooks', async () => {
    const receiver = await startReceiver();
    const mock = startMock();
    const id = await createIntent(mock, {webhook_url: receiver.url});
    await api(mock).SimulateWebhook(webhookRequest(id, {delay_seconds: 1}));
    mock.close();
    mock.close();
    await new Promise((resolve) => setTimeout(resolve, 1300));
    expect(receiver.received).toHaveLength(0);
  });

  it('refuses an intent without a webhook_url unless forced, which then only moves the status', async () => {
    const mock = startMock();
    const {SimulateWebhook} = api(mock);
    const id = await createIntent(mock);
    await expectError(SimulateWebhook(webhookRequest(id)), 'FAILED_PRECONDITION');
    const answer = await SimulateWebhook(
      webhookRequest(id, {force_trigger: true, target_status: 'PAYMENT_STATUS_CANCELLED'}),
    );
    expect(answer).toMatchObject({webhook_sent: false, webhook_id: ''});
    expect(await statusOf(mock, id)).toBe('PAYMENT_STATUS_CANCELLED');
  });

  it('checks its arguments', async () => {
    const mock = startMock();
    const {SimulateWebhook} = api(mock);
    const id = await createIntent(mock, {webhook_url: 'http://127.0.0.1:9/hook'});
    await expectError(SimulateWebhook(webhookRequest('pi_nope')), 'NOT_FOUND');
    await expectError(SimulateWebhook(webhookRequest(id, {delay_seconds: 301})), 'INVALID_ARGUMENT', 'delay_seconds');
    await expectError(SimulateWebhook(webhookRequest(id, {delay_seconds: -1})), 'INVALID_ARGUMENT', 'delay_seconds');
    await expectError(
      SimulateWebhook(webhookRequest(id, {target_status: 'PAYMENT_STATUS_UNSPECIFIED'})),
      'INVALID_ARGUMENT',
      'target_status',
    );
    await expectError(
      SimulateWebhook(webhookRequest(id, {target_status: 'PAYMENT_STATUS_PENDING'})),
      'FAILED_PRECONDITION',
    );
  });
});

describe('retention', () => {
  const RETENTION = {finishedMs: 10_000, confirmedMs: 60_000, idempotencyTtlMs: 5000};
  const ALL = {user_id: '', status: 'PAYMENT_STATUS_UNSPECIFIED', reservation_id: '', pagination: null};

  it('forgets failed, cancelled and expired intents after finishedMs, completed ones after confirmedMs; forgotten ones are NOT_FOUND', async () => {
    let clock = 1_750_000_000_000;
    const mock = startMock({now: () => clock, retention: RETENTION});
    const {ProcessPayment, CancelPayment, ListPayments, GetPaymentStatus} = api(mock);
    // Never looked at again: it expires after 15 minutes on its own, then is kept finishedMs.
    const abandoned = await createIntent(mock);
    clock += 15 * 60_000;
    const failed = await createIntent(mock, {scenario: 'PAYMENT_SCENARIO_FAIL'});
    await ProcessPayment(processRequest(failed));
    const cancelled = await createIntent(mock);
    await CancelPayment(cancelRequest(cancelled));
    const completed = await createIntent(mock);
    await ProcessPayment(processRequest(completed));
    const pending = await createIntent(mock);
    const ids = async () =>
      (await ListPayments(ALL)).payments.map((payment: any) => payment.payment_intent_id as string);
    expect(await ids()).toHaveLength(5);

    clock += 9_999;
    expect(await ids()).toHaveLength(5);
    clock += 1;
    expect((await ids()).sort()).toEqual([completed, pending].sort());
    for (const gone of [abandoned, failed, cancelled]) {
      await expectError(GetPaymentStatus({payment_intent_id: gone, user_id: ''}), 'NOT_FOUND');
      await expectError(CancelPayment(cancelRequest(gone)), 'NOT_FOUND');
    }

    // A pending intent is never forgotten while pending: it expires at 15 minutes, then is kept finishedMs.
    clock += 50_000;
    await expectError(GetPaymentStatus({payment_intent_id: completed, user_id: ''}), 'NOT_FOUND');
    expect(await statusOf(mock, pending)).toBe('PAYMENT_STATUS_PENDING');
    clock += 15 * 60_000 - 60_000;
    expect(await ids()).toEqual([pending]);
    expect(await statusOf(mock, pending)).toBe('PAYMENT_STATUS_EXPIRED');
    clock += RETENTION.finishedMs;
    expect(await ids()).toEqual([]);
  });

  it('never forgets an intent while it is processing', async () => {
    let clock = 1_750_000_000_000;
    const mock = startMock({now: () => clock, retention: RETENTION, defaultScenario: 'DELAY', delayMs: 300});
    const id = await createIntent(mock);
    const processing = api(mock).ProcessPayment(processRequest(id));
    clock += 15 * 60_000 + RETENTION.confirmedMs;
    expect(await statusOf(mock, id)).toBe('PAYMENT_STATUS_PROCESSING');
    expect((await processing).status).toBe('PAYMENT_STATUS_COMPLETED');
    expect(await statusOf(mock, id)).toBe('PAYMENT_STATUS_COMPLETED');
  });

  it("repeats an idempotency_key's answer for idempotencyTtlMs only; then the key is new again", async () => {
    let clock = 1_750_000_000_000;
    const mock = startMock({now: () => clock, retention: RETENTION});
    const {CreatePaymentIntent} = api(mock);
    const first = await CreatePaymentIntent(intentRequest({idempotency_key: 'key-1'}));
    clock += 4_999;
    expect(await CreatePaymentIntent(intentRequest({idempotency_key: 'key-1'}))).toEqual(first);
    await expectError(
      CreatePaymentIntent(intentRequest({idempotency_key: 'key-1', amount: {amount: '999', currency: 'KRW'}})),
      'IDEMPOTENCY_CONFLICT',
    );
    clock += 1;
    const second = await CreatePaymentIntent(intentRequest({idempotency_key: 'key-1'}));
    expect(second.payment_intent_id).not.toBe(first.payment_intent_id);
    clock += 5000;
    const other = await CreatePaymentIntent(
      intentRequest({idempotency_key: 'key-1', amount: {amount: '999', currency: 'KRW'}}),
    );
    expect(other.payment_intent_id).not.toBe(second.payment_intent_id);
  });

  it('stays bounded under steady traffic: 1,000 intents paid with a FAIL scenario, about a retention window listed', async () => {
    let clock = 1_750_000_000_000;
    const mock = startMock({now: () => clock, retention: RETENTION, defaultScenario: 'FAIL'});
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 20; i++) {
        const id = await createIntent(mock, {idempotency_key: `k-${round}-${i}`});
        await api(mock).ProcessPayment(processRequest(id, {idempotency_key: `p-${round}-${i}`}));
      }
      clock += 1000;
    }
    const total = (await api(mock).ListPayments(ALL)).page_info.total_count;
    expect(total).toBeLessThanOrEqual(220);
    expect(total).toBeGreaterThanOrEqual(180);
  });

  it('refuses a retention that is not a positive number of milliseconds', () => {
    expect(() => startMock({retention: {idempotencyTtlMs: -1}})).toThrow(/idempotencyTtlMs/);
  });
});

describe('waiting on the closing signal', () => {
  it("DELAY, TIMEOUT and webhooks do not tie a signal per call to the mock's closing signal (AbortSignal.any leaks on Node 20)", async () => {
    const any = vi.spyOn(AbortSignal, 'any');
    try {
      const receiver = await startReceiver();
      const mock = startMock({defaultScenario: 'DELAY', delayMs: 1});
      for (let i = 0; i < 20; i++)
        await api(mock).ProcessPayment(processRequest(await createIntent(mock, {webhook_url: receiver.url})));
      const timeout = await createIntent(mock, {scenario: 'PAYMENT_SCENARIO_TIMEOUT'});
      const caller = new AbortController();
      const waiting = api(mock).ProcessPayment(processRequest(timeout), callContext(caller.signal));
      caller.abort();
      await expectError(waiting, 'UPSTREAM_TIMEOUT');
      await mock.webhooksIdle();
      expect(mock.webhooksDelivered).toBe(20);
      expect(any).not.toHaveBeenCalled();
    } finally {
      any.mockRestore();
    }
  });
});
