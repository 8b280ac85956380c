import {createHash} from 'node:crypto';
import {TacosError} from '../../errors.js';

/**
 * First answers by idempotency key, one key space per method. A failed call is forgotten, so a retry
 * with the same key runs again (nothing happened the first time); a call still running is shared.
 */
export class IdempotencyStore {
  private readonly entries = new Map<string, {fingerprint: string; answer: Promise<object>}>();

  run(method: string, key: unknown, request: object, produce: () => Promise<object>, signal?: AbortSignal): Promise<object> {
    if (typeof key !== 'string' || key === '') return produce();
    const id = `${method}\u0000${key}`;
    const fingerprint = fingerprintOf(request);
    const existing = this.entries.get(id);
    if (existing) {
      if (existing.fingerprint !== fingerprint) {
        return Promise.reject(
          new TacosError(`idempotency_key ${JSON.stringify(key)} was already used for a different ${method} request.`, {code: 'IDEMPOTENCY_CONFLICT'}),
        );
      }
      return untilAborted(existing.answer, signal).then(copy);
    }
    const answer = produce();
    this.entries.set(id, {fingerprint, answer});
    answer.catch(() => {
      if (this.entries.get(id)?.answer === answer) this.entries.delete(id);
    });
    return answer.then(copy);
  }
}

/**
 * A hash of the request without its key, where a default value counts as absent (proto3 cannot tell
 * them apart, and the HTTP and gRPC doors fill defaults differently from a hand-made object).
 * Hashed, so card details are not kept.
 */
export function fingerprintOf(request: object): string {
  const {idempotency_key: _key, ...rest} = request as Record<string, unknown>;
  return createHash('sha256')
    .update(JSON.stringify(canonical(rest) ?? null))
    .digest('hex');
}

function canonical(value: unknown): unknown {
  if (value === null || value === undefined || value === '' || value === 0 || value === '0' || value === false) return undefined;
  if (typeof value === 'string' && value.endsWith('_UNSPECIFIED')) return undefined;
  if (Array.isArray(value)) return value.length === 0 ? undefined : value.map((item) => canonical(item) ?? null);
  if (typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value as object).sort()) {
      const inner = canonical((value as Record<string, unknown>)[key]);
      if (inner !== undefined) out[key] = inner;
    }
    return Object.keys(out).length === 0 ? undefined : out;
  }
  return value;
}

/** A repeat caller waits for the first call's answer, but no longer than its own deadline. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  const gaveUp = () => new TacosError('The caller gave up while the first call with this idempotency_key was still running.', {code: 'UPSTREAM_TIMEOUT'});
  if (signal.aborted) return Promise.reject(gaveUp());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(gaveUp());
    signal.addEventListener('abort', onAbort, {once: true});
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** Each caller gets its own copy, so one cannot change the answer another will be given. */
function copy<T>(value: T): T {
  return structuredClone(value);
}
