const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** A caller's request id, when it is one we can echo safely (header and log injection). */
export function validRequestId(value: unknown): string | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  return typeof text === 'string' && REQUEST_ID.test(text) ? text : undefined;
}
