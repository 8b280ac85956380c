/**
 * `tacos serve reservation` and `tacos serve payment` as a user runs them: node bin/run.js (run
 * `npm run build` first), JSON log lines on stdout, free ports, a real call over each door, and a
 * clean stop on SIGTERM; bad flags fail before anything listens.
 */
import {afterAll, describe, expect, it} from 'vitest';
import {runCli, startCli, type LongRunningCli} from '../helpers/cli.js';
import {contractClient, unaryCall} from '../helpers/grpc-client.js';

const running: LongRunningCli[] = [];

afterAll(() => {
  for (const cli of running) cli.kill();
});

function serve(args: string[]): LongRunningCli {
  // LOG_LEVEL from the caller's environment must not hide the line the test waits for.
  const cli = startCli(['serve', ...args], {env: {LOG_LEVEL: 'info'}});
  running.push(cli);
  return cli;
}

/** The listening line's addresses: `http://127.0.0.1:N` and `127.0.0.1:M` (for a gRPC client). */
async function listening(cli: LongRunningCli, name: string) {
  const line = await cli.waitForLine((candidate) => candidate.msg === `${name} mock listening`);
  expect(line.http).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  expect(line.grpc).toMatch(/^grpc:\/\/127\.0\.0\.1:\d+$/);
  return {line, http: String(line.http), grpc: String(line.grpc).replace('grpc://', '')};
}

async function stop(cli: LongRunningCli, http: string): Promise<void> {
  cli.child.kill('SIGTERM');
  const code = await Promise.race([
    cli.exited,
    new Promise((resolve) => setTimeout(() => resolve('still running after 10 s'), 10_000)),
  ]);
  expect(code, cli.stderr()).toBe(0);
  await expect(fetch(`${http}/healthz`)).rejects.toThrow();
}

describe('tacos serve reservation', () => {
  it('serves on free ports with the latency and hold of its flags, and stops with exit 0 on SIGTERM', async () => {
    const cli = serve([
      'reservation',
      '--http-port',
      '0',
      '--grpc-port',
      '0',
      '--latency',
      '50ms',
      '--error-rate',
      '0',
      '--hold',
      '2s',
    ]);
    const {line, http, grpc} = await listening(cli, 'reservation');
    expect(line).toMatchObject({service: 'reservation', latency_ms: 50, error_rate: 0});
    expect(await (await fetch(`${http}/admin/faults`)).json()).toMatchObject({latency_ms: 50, error_rate: 0});

    const started = performance.now();
    const response = await fetch(`${http}/api/v1/reservations`, {
      method: 'POST',
      headers: {'content-type': 'application/json'},
      body: JSON.stringify({event_id: 'evt_2026_concert', quantity: 1, user_id: 'e2e'}),
    });
    const elapsed = performance.now() - started;
    const created = (await response.json()) as Record<string, any>;
    expect(response.status, JSON.stringify(created)).toBe(200);
    expect(elapsed).toBeGreaterThanOrEqual(49); // --latency 50ms (1 ms of timer slack)
    expect(created.status).toBe('RESERVATION_STATUS_HOLD');
    // --hold 2s: the hold ends two seconds after it was taken...
    const holdMs = Date.parse(created.hold_expires_at) - Date.now();
    expect(holdMs).toBeGreaterThan(1000);
    expect(holdMs).toBeLessThanOrEqual(2100);

    // ...and the gRPC door sees the same reservation, then sees it expire on time.
    const client = await contractClient('reservation.v1.ReservationService', grpc);
    try {
      const read = await unaryCall(client, 'GetReservation', {reservation_id: created.reservation_id, user_id: 'e2e'});
      expect(read.reservation.status).toBe('RESERVATION_STATUS_HOLD');
      let status = read.reservation.status as string;
      const deadline = Date.now() + 6000;
      while (status === 'RESERVATION_STATUS_HOLD' && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        status = (await unaryCall(client, 'GetReservation', {reservation_id: created.reservation_id, user_id: 'e2e'}))
          .reservation.status;
      }
      expect(status).toBe('RESERVATION_STATUS_EXPIRED');
    } finally {
      client.close();
    }

    await stop(cli, http);
  });

  it('--error-rate 2 is a usage error (exit 2) naming --error-rate', async () => {
    const result = await runCli(['serve', 'reservation', '--http-port', '0', '--grpc-port', '0', '--error-rate', '2']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--error-rate');
    expect(result.stdout).not.toContain('mock listening');
  });

  it('--catalog missing.json fails with exit 1 naming the file', async () => {
    const result = await runCli([
      'serve',
      'reservation',
      '--http-port',
      '0',
      '--grpc-port',
      '0',
      '--catalog',
      'missing.json',
    ]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('missing.json');
    expect(result.stdout).not.toContain('mock listening');
  });
});

describe('tacos serve payment', () => {
  it('--latency 20s with a call in flight: SIGTERM stops it within 2 s (exit 0), the call answers 503 UNAVAILABLE', async () => {
    const cli = serve(['payment', '--http-port', '0', '--grpc-port', '0', '--latency', '20s']);
    const {http} = await listening(cli, 'payment');
    const inFlight = fetch(`${http}/api/v1/payments`).then(
      async (response) => ({status: response.status, body: (await response.json()) as Record<string, any>}),
      (error: unknown) => ({status: 0, body: {error: String(error)}}),
    );
    // The call is sleeping on the latency once the mock counts it.
    const deadline = Date.now() + 5000;
    while (
      Date.now() < deadline &&
      !/mock_calls_total\{[^}]*method="ListPayments"[^}]*\} 1/.test(await (await fetch(`${http}/metrics`)).text())
    ) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const started = performance.now();
    cli.child.kill('SIGTERM');
    const code = await Promise.race([
      cli.exited,
      new Promise((resolve) => setTimeout(() => resolve('still running after 5 s'), 5000)),
    ]);
    expect(code, cli.stderr()).toBe(0);
    expect(performance.now() - started).toBeLessThan(2000);
    const answer = await inFlight;
    expect(answer.status, JSON.stringify(answer.body)).toBe(503);
    expect(answer.body.error?.code).toBe('UNAVAILABLE');
  });

  it('--scenario FAIL: an intent created over HTTP and processed over gRPC fails; SIGTERM stops it with exit 0', async () => {
    const cli = serve(['payment', '--http-port', '0', '--grpc-port', '0', '--scenario', 'FAIL']);
    const {http, grpc} = await listening(cli, 'payment');

    const response = await fetch(`${http}/api/v1/payments/intents`, {
      method: 'POST',
      headers: {'content-type': 'application/json'},
      body: JSON.stringify({
        reservation_id: 'rsv_e2e',
        amount: {amount: '99000', currency: 'KRW'},
        user_id: 'e2e',
        method: 'PAYMENT_METHOD_CREDIT_CARD',
      }),
    });
    const intent = (await response.json()) as Record<string, any>;
    expect(response.status, JSON.stringify(intent)).toBe(200);
    expect(intent.status).toBe('PAYMENT_STATUS_PENDING');

    const client = await contractClient('payment.v1.PaymentService', grpc);
    try {
      const processed = await unaryCall(client, 'ProcessPayment', {payment_intent_id: intent.payment_intent_id});
      expect(processed.status).toBe('PAYMENT_STATUS_FAILED');
      expect(processed.result?.success).toBe(false);
    } finally {
      client.close();
    }
    const shown = (await (await fetch(`${http}/api/v1/payments/${intent.payment_intent_id}`)).json()) as Record<
      string,
      any
    >;
    expect(shown.payment.status).toBe('PAYMENT_STATUS_FAILED');

    await stop(cli, http);
  });

  it('--scenario NOPE is a usage error (exit 2)', async () => {
    const result = await runCli(['serve', 'payment', '--http-port', '0', '--grpc-port', '0', '--scenario', 'NOPE']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--scenario');
    expect(result.stdout).not.toContain('mock listening');
  });
});
