/** The bounds a client cannot push the server past; each one's refusal is counted in /metrics. */
export interface HttpLimits {
  /** Time for a request's headers to arrive, from its first byte (or the connection's start). */
  headersTimeoutMs: number;
  /** Time for a whole request to arrive, body included: a body sent a byte at a time is cut. */
  requestTimeoutMs: number;
  /** How long a kept-alive connection may wait for its next request. */
  keepAliveTimeoutMs: number;
  /** Open connections per process; one more is closed at once. */
  maxConnections: number;
}

/**
 * Node's header timeout, the request timeout Node leaves off, a keep-alive above the 60 s idle
 * timeout of common load balancers (fastify's 72 s, so that they close first), and a connection cap
 * well under the open files a process may have.
 */
export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 72_000,
  maxConnections: 10_000,
};
