/**
 * The base of links a mock hands out (payment_url): its HTTP address as a client on this machine
 * reaches it. A wildcard bind address is reached through loopback.
 */
export function localBaseUrl(host: string, port: number): string {
  const reachable = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${reachable.includes(':') ? `[${reachable}]` : reachable}:${port}`;
}

/** A base URL without trailing slashes, given as text or as a getter (the port is known only once listening). */
export type PublicUrl = string | (() => string);

export function publicUrlOf(value: PublicUrl | undefined, fallback: string): () => string {
  const read = typeof value === 'function' ? value : () => value ?? fallback;
  return () => read().replace(/\/+$/, '');
}
