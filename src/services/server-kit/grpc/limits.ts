/** Why the transport refused or dropped something; the `reason` label of gateway_refusals_total{door="grpc"}. */
export type GrpcRefusal =
  | 'connection_limit'
  | 'handshake_timeout'
  | 'dead_session'
  | 'too_many_pings'
  | 'message_too_large'
  | 'invalid_message'
  | 'invalid_timeout'
  | 'streams_per_token'
  | 'streams_per_user';

/** What one client may hold or send; every limit refuses with a status or a closed connection. */
export interface GrpcLimits {
  maxConnections: number;
  /** A connection must send the HTTP/2 preface and its SETTINGS (after TLS, if any) within this. */
  handshakeTimeoutMs: number;
  /** How long a ping that checks a suspect session may go unanswered. */
  pingTimeoutMs: number;
  /** Client pings closer together than this are strikes; a third strike closes the connection. */
  minPingIntervalMs: number;
  /** A connection with no call for this long is closed (GOAWAY). */
  idleTimeoutMs: number;
  /** A connection older than this is asked to go (GOAWAY), and cut after the grace. */
  maxConnectionAgeMs: number;
  maxConnectionAgeGraceMs: number;
  /** The server pings each connection this often; one that does not answer within pingTimeoutMs is closed. */
  keepaliveTimeMs: number;
  maxConcurrentStreams: number;
  maxReceiveMessageBytes: number;
}

export const DEFAULT_GRPC_LIMITS: GrpcLimits = {
  maxConnections: 1000,
  handshakeTimeoutMs: 5000,
  pingTimeoutMs: 10_000,
  minPingIntervalMs: 10_000,
  idleTimeoutMs: 300_000,
  maxConnectionAgeMs: 1_800_000,
  maxConnectionAgeGraceMs: 60_000,
  keepaliveTimeMs: 120_000,
  maxConcurrentStreams: 100,
  // REST stops at 16 KB; the largest request the API needs (an order's seat ids) is far below this.
  maxReceiveMessageBytes: 65_536,
};
