/**
 * The rollout controller with the real judge and window: the share it gives each backend, the
 * automatic rollback from recorded calls, and what clears it. The clock is the test's, so that the
 * sliding window can be crossed without waiting.
 */
import {Writable} from 'node:stream';
import {describe, expect, it} from 'vitest';
import {RolloutController, type RollbackChange} from '../../src/services/gateway/rollout/controller.js';
import {readRolloutSettings, type RolloutSettings} from '../../src/services/gateway/rollout/settings.js';
import {createLogger} from '../../src/services/logging.js';

function setup(env: Record<string, string> = {}) {
  const logs: Array<Record<string, any>> = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) logs.push(JSON.parse(line));
      done();
    },
  });
  const clock = {now: Date.parse('2026-12-04T10:00:00.000Z')};
  const changes: RollbackChange[] = [];
  const settings = readRolloutSettings({GRPC_ENABLED: 'true', GRPC_TRAFFIC_PERCENT: '30', ...env});
  const controller = new RolloutController(
    settings,
    createLogger('gateway', 'info', sink),
    (change) => changes.push(change),
    () => clock.now,
  );
  return {controller, logs, clock, changes, settings};
}

/** `count` calls of `backend` over `protocol`, each taking `seconds`, the first `failures` failed. */
function record(
  controller: RolloutController,
  backend: string,
  protocol: 'grpc' | 'http',
  count: number,
  seconds: number,
  failures = 0,
) {
  for (let index = 0; index < count; index++) controller.record(backend, protocol, index < failures, seconds);
}

const withPercent = (settings: RolloutSettings, percent: number): RolloutSettings => ({
  ...settings,
  grpcTrafficPercent: percent,
});

describe('the rollout controller', () => {
  it('gives each backend the configured share, and none while GRPC_ENABLED is false', () => {
    expect(setup().controller.grpcShare('reservation')).toBe(30);
    expect(setup({GRPC_ENABLED: 'false'}).controller.grpcShare('payment')).toBe(0);
  });

  it('rolls back a backend whose gRPC p99 is past the limit, only that one, with one warn line', () => {
    const {controller, logs, changes} = setup();
    record(controller, 'reservation', 'grpc', 30, 2);
    record(controller, 'reservation', 'http', 30, 0.003);
    record(controller, 'payment', 'grpc', 30, 0.003);
    controller.evaluate();
    controller.evaluate();
    expect(controller.grpcShare('reservation')).toBe(0);
    expect(controller.grpcShare('payment')).toBe(30);
    const warnings = logs.filter((line) => line.msg === 'grpc road rolled back');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({backend: 'reservation', failed: 'p99', level: 'warn'});
    expect(warnings[0].detail).toMatch(/gRPC p99 \d+ ms > 250 ms/);
    expect(changes).toEqual([{backend: 'reservation', rollback: expect.objectContaining({failed: 'p99'})}]);
    const snapshot = controller.snapshot();
    expect(snapshot.reservation).toMatchObject({configuredPercent: 30, effectivePercent: 0});
    expect(snapshot.reservation.rolledBack?.grpc.calls).toBe(30);
    expect(snapshot.payment.rolledBack).toBeNull();
  });

  it('rolls back on a gRPC failure rate past the HTTP one plus the margin', () => {
    const {controller} = setup();
    record(controller, 'payment', 'grpc', 40, 0.01, 4);
    record(controller, 'payment', 'http', 40, 0.01, 1);
    controller.evaluate();
    expect(controller.snapshot().payment.rolledBack).toMatchObject({failed: 'errors'});
    expect(controller.grpcShare('payment')).toBe(0);
  });

  it('does not judge fewer than ROLLOUT_MIN_CALLS gRPC calls, nor roll back when ROLLOUT_AUTO_ROLLBACK is false', () => {
    const few = setup({ROLLOUT_MIN_CALLS: '50'});
    record(few.controller, 'reservation', 'grpc', 49, 5, 49);
    few.controller.evaluate();
    expect(few.controller.grpcShare('reservation')).toBe(30);
    const off = setup({ROLLOUT_AUTO_ROLLBACK: 'false'});
    record(off.controller, 'reservation', 'grpc', 100, 5, 100);
    off.controller.evaluate();
    expect(off.controller.grpcShare('reservation')).toBe(30);
  });

  it('judges only the calls within ROLLOUT_WINDOW', () => {
    const {controller, clock} = setup({ROLLOUT_WINDOW: '10s'});
    record(controller, 'reservation', 'grpc', 30, 3, 30);
    clock.now += 10_000;
    controller.evaluate();
    expect(controller.grpcShare('reservation')).toBe(30);
    expect(controller.snapshot().reservation.window.grpc.calls).toBe(0);
    expect(controller.snapshot().reservation.totals.grpc).toMatchObject({calls: 30, failures: 30});
    clock.now -= 1000;
    expect(controller.snapshot().reservation.window.grpc.calls).toBe(30);
  });

  it('keeps a rollback until a reset, or a reload that moves the share', () => {
    const {controller, changes, settings} = setup();
    const rollBack = () => {
      record(controller, 'reservation', 'grpc', 30, 1, 30);
      controller.evaluate();
      expect(controller.grpcShare('reservation')).toBe(0);
    };
    rollBack();
    controller.apply(readRolloutSettings({GRPC_ENABLED: 'true', GRPC_TRAFFIC_PERCENT: '30', ROLLOUT_MIN_CALLS: '25'}));
    expect(controller.grpcShare('reservation')).toBe(0);
    controller.reset();
    expect(controller.grpcShare('reservation')).toBe(30);
    expect(changes.at(-1)).toEqual({backend: 'reservation', rollback: null});
    // The calls that caused it are not judged again.
    controller.evaluate();
    expect(controller.grpcShare('reservation')).toBe(30);
    rollBack();
    controller.apply(withPercent(settings, 50));
    expect(controller.grpcShare('reservation')).toBe(50);
  });

  it('takes a rollback decided elsewhere without passing it on', () => {
    const a = setup();
    record(a.controller, 'payment', 'grpc', 30, 0.01, 30);
    a.controller.evaluate();
    const b = setup();
    b.controller.setRollback(a.changes[0]);
    expect(b.controller.grpcShare('payment')).toBe(0);
    b.controller.setRollback({backend: 'payment', rollback: null});
    expect(b.controller.grpcShare('payment')).toBe(30);
    expect(b.changes).toEqual([]);
  });
});

describe('readRolloutSettings', () => {
  it('reads the defaults of the contract', () => {
    expect(readRolloutSettings({})).toEqual({
      grpcEnabled: false,
      grpcTrafficPercent: 100,
      thresholds: {
        autoRollback: true,
        windowSeconds: 30,
        minCalls: 20,
        maxErrorRate: 0.05,
        maxP99Ratio: 2,
        minP99Ms: 250,
      },
    });
  });

  it('refuses a bad value, naming its variable', () => {
    expect(() => readRolloutSettings({ROLLOUT_WINDOW: 'soon'})).toThrow(/ROLLOUT_WINDOW=soon is not valid/);
    expect(() => readRolloutSettings({GRPC_TRAFFIC_PERCENT: '101'})).toThrow(/GRPC_TRAFFIC_PERCENT=101/);
    expect(() => readRolloutSettings({ROLLOUT_WINDOW: '11m'})).toThrow(
      /ROLLOUT_WINDOW=11m is not valid: expected at most 600s/,
    );
  });
});
