/**
 * Pieces the mocks share: injected faults against a closing mock, signals linked without
 * AbortSignal.any (which keeps one signal per call alive on Node 20), and the retention queue.
 */
import {getEventListeners} from 'node:events';
import {describe, expect, it} from 'vitest';
import {TacosError} from '../../src/services/errors.js';
import {Faults} from '../../src/services/mocks/faults.js';
import {linkedSignal} from '../../src/services/mocks/linked-signal.js';
import {localBaseUrl} from '../../src/services/mocks/public-url.js';
import {DueQueue} from '../../src/services/mocks/retention.js';

async function failure(promise: Promise<unknown>): Promise<TacosError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(TacosError);
    return error as TacosError;
  }
  throw new Error('expected a failure');
}

describe('Faults.apply', () => {
  it('stops sleeping on a 20 s latency as soon as the mock closes, and fails the call UNAVAILABLE', async () => {
    const faults = new Faults({latencyMs: 20_000, errorRate: 0});
    const closing = new AbortController();
    const started = performance.now();
    const call = failure(faults.apply('grpc', new AbortController().signal, closing.signal));
    setTimeout(() => closing.abort(), 50);
    const error = await call;
    expect(error.code).toBe('UNAVAILABLE');
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('fails at once once the mock is closing, latency or not', async () => {
    const closing = new AbortController();
    closing.abort();
    expect(
      (
        await failure(
          new Faults({latencyMs: 0, errorRate: 0}).apply('grpc', new AbortController().signal, closing.signal),
        )
      ).code,
    ).toBe('UNAVAILABLE');
  });

  it('still fails UPSTREAM_TIMEOUT when the caller gives up first', async () => {
    const caller = new AbortController();
    const call = failure(
      new Faults({latencyMs: 20_000, errorRate: 0}).apply('grpc', caller.signal, new AbortController().signal),
    );
    caller.abort();
    expect((await call).code).toBe('UPSTREAM_TIMEOUT');
  });

  it('leaves no listener on the long-lived closing signal after 2,000 calls', async () => {
    const faults = new Faults({latencyMs: 1, errorRate: 0});
    const closing = new AbortController();
    await Promise.all(
      Array.from({length: 2000}, () => faults.apply('grpc', new AbortController().signal, closing.signal)),
    );
    expect(getEventListeners(closing.signal, 'abort')).toHaveLength(0);
  });
});

describe('linkedSignal', () => {
  it('aborts when any input aborts, with its reason', () => {
    const a = new AbortController();
    const b = new AbortController();
    const linked = linkedSignal([a.signal, b.signal]);
    expect(linked.signal.aborted).toBe(false);
    b.abort(new Error('b went away'));
    expect(linked.signal.aborted).toBe(true);
    expect((linked.signal.reason as Error).message).toBe('b went away');
    linked.dispose();
  });

  it('is aborted from the start when an input already is', () => {
    const linked = linkedSignal([new AbortController().signal, AbortSignal.abort('gone')]);
    expect(linked.signal.aborted).toBe(true);
    expect(linked.signal.reason).toBe('gone');
  });

  it('dispose() removes its listeners from the inputs, so a long-lived input does not collect them', () => {
    const longLived = new AbortController();
    for (let i = 0; i < 1000; i++) {
      const linked = linkedSignal([new AbortController().signal, longLived.signal]);
      linked.dispose();
    }
    expect(getEventListeners(longLived.signal, 'abort')).toHaveLength(0);
  });
});

describe('DueQueue', () => {
  it('gives keys back once due, in order, at most `limit` at a time; adding a key again moves it back', () => {
    const queue = new DueQueue<string>(100);
    queue.add('a', 0);
    queue.add('b', 10);
    queue.add('c', 20);
    queue.add('a', 30);
    expect(queue.takeDue(99)).toEqual([]);
    expect(queue.takeDue(115)).toEqual(['b']);
    queue.delete('c');
    expect(queue.takeDue(1000, 5)).toEqual(['a']);
    expect(queue.size).toBe(0);
    for (let i = 0; i < 10; i++) queue.add(String(i), i);
    expect(queue.takeDue(1000, 3)).toEqual(['0', '1', '2']);
    expect(queue.size).toBe(7);
  });
});

describe('localBaseUrl', () => {
  it('reaches a wildcard bind through loopback and brackets IPv6', () => {
    expect(localBaseUrl('127.0.0.1', 8030)).toBe('http://127.0.0.1:8030');
    expect(localBaseUrl('0.0.0.0', 8010)).toBe('http://127.0.0.1:8010');
    expect(localBaseUrl('::', 8010)).toBe('http://[::1]:8010');
    expect(localBaseUrl('::1', 1)).toBe('http://[::1]:1');
    expect(localBaseUrl('localhost', 2)).toBe('http://localhost:2');
  });
});
