/**
 * A signal that aborts when any of `signals` does, and `dispose()` to remove the listeners it put
 * on them. AbortSignal.any would do the first half, but on Node 20 every signal it makes stays
 * attached to a long-lived input (the mock's closing signal) until that one aborts: a million calls,
 * a million signals kept. Call dispose() in a finally.
 */
export function linkedSignal(signals: AbortSignal[]): {signal: AbortSignal; dispose(): void} {
  const controller = new AbortController();
  const already = signals.find((signal) => signal.aborted);
  if (already) {
    controller.abort(already.reason);
    return {signal: controller.signal, dispose: () => undefined};
  }
  const listeners = signals.map((signal) => {
    const onAbort = () => controller.abort(signal.reason);
    signal.addEventListener('abort', onAbort, {once: true});
    return () => signal.removeEventListener('abort', onAbort);
  });
  return {
    signal: controller.signal,
    dispose: () => {
      for (const remove of listeners) remove();
    },
  };
}
