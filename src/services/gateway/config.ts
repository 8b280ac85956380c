import {EnvReader, type Environment} from '../config.js';
import {LOG_LEVELS, type LogLevel} from '../logging.js';
import {isProxyEntry, type RateLimitSettings} from '../http/rate-limit.js';
import {DEFAULT_GRPC_LIMITS, type GrpcLimits} from '../grpc/limits.js';
import type {RedisSettings} from '../redis/client.js';
import type {QueueSettings} from './queue/queue-service.js';

export interface AuthSettings {
  production: boolean;
  /** SERVER_ENVIRONMENT is development, dev, local or test: development aids (test users, dev secret) are on. */
  development: boolean;
  jwtSecret?: string;
  jwtIssuer?: string;
  jwtAudience?: string;
  jwksEndpoint?: string;
  /** Accepted as a bearer token only when SERVER_ENVIRONMENT is development, dev, local or test. */
  devBypassToken?: string;
}

export interface BackendSettings {
  grpcAddress: string;
  httpBaseUrl: URL;
  timeoutMs: number;
}

export interface GatewayConfig {
  host: string;
  httpPort: number;
  environment: string;
  grpcEnabled: boolean;
  grpcPort: number;
  grpcTls?: {certFile: string; keyFile: string};
  grpcLimits: GrpcLimits;
  /** Open StreamQueueUpdates streams one waiting token may hold. */
  grpcMaxStreamsPerToken: number;
  /** With GRPC_ENABLED, the share (0..100) of backend calls sent over gRPC; the rest go over HTTP. */
  grpcTrafficPercent: number;
  backends: {reservation: BackendSettings; payment: BackendSettings};
  breaker: {failures: number; cooldownMs: number};
  redis: RedisSettings;
  auth: AuthSettings;
  queue: QueueSettings;
  logLevel: LogLevel;
  /** Largest request body the REST API reads. */
  bodyLimitBytes: number;
  /** Origins browsers may call from; `*` for any; empty for no CORS. */
  corsOrigins: string[];
  rateLimit: RateLimitSettings;
  /** How long a stop waits for calls in flight. */
  shutdownGraceMs: number;
}

export const DEV_BYPASS_TOKEN_DEFAULT = 'tacos-dev-token';
export const DEV_JWT_SECRET = 'tacos-dev-secret';

/** The gateway's settings from the environment (DESIGN.md §3); a bad value names its variable. */
export function readGatewayConfig(env: Environment): GatewayConfig {
  const read = new EnvReader(env);
  const environment = read.string('SERVER_ENVIRONMENT', 'development');
  // Shortcuts are on only where the environment says it is one for development, whatever its spelling.
  const production = /^prod(uction)?$/i.test(environment);
  const developing = /^(development|dev|local|test)$/i.test(environment);
  const tls = read.bool('GRPC_USE_TLS', false);
  return {
    host: read.string('SERVER_HOST', '127.0.0.1'),
    httpPort: read.port('SERVER_PORT', 8000),
    environment,
    grpcEnabled: read.bool('GRPC_ENABLED', false),
    grpcPort: read.port('GRPC_PORT', 9090),
    grpcTls: tls
      ? {certFile: read.string('GRPC_TLS_CERT', 'certs/server.crt'), keyFile: read.string('GRPC_TLS_KEY', 'certs/server.key')}
      : undefined,
    grpcTrafficPercent: read.int('GRPC_TRAFFIC_PERCENT', 100, 0, 100),
    grpcLimits: {
      maxConnections: read.int('GRPC_MAX_CONNECTIONS', DEFAULT_GRPC_LIMITS.maxConnections, 1),
      handshakeTimeoutMs: read.durationMs('GRPC_HANDSHAKE_TIMEOUT', DEFAULT_GRPC_LIMITS.handshakeTimeoutMs),
      pingTimeoutMs: read.durationMs('GRPC_KEEPALIVE_TIMEOUT', DEFAULT_GRPC_LIMITS.pingTimeoutMs),
      minPingIntervalMs: read.durationMs('GRPC_KEEPALIVE_MIN_PING_INTERVAL', DEFAULT_GRPC_LIMITS.minPingIntervalMs),
      idleTimeoutMs: read.durationMs('GRPC_MAX_CONNECTION_IDLE', DEFAULT_GRPC_LIMITS.idleTimeoutMs),
      maxConnectionAgeMs: read.durationMs('GRPC_MAX_CONNECTION_AGE', DEFAULT_GRPC_LIMITS.maxConnectionAgeMs),
      maxConnectionAgeGraceMs: read.durationMs('GRPC_MAX_CONNECTION_AGE_GRACE', DEFAULT_GRPC_LIMITS.maxConnectionAgeGraceMs),
      keepaliveTimeMs: read.durationMs('GRPC_KEEPALIVE_TIME', DEFAULT_GRPC_LIMITS.keepaliveTimeMs),
      maxConcurrentStreams: read.int('GRPC_MAX_CONCURRENT_STREAMS', DEFAULT_GRPC_LIMITS.maxConcurrentStreams, 1),
      maxReceiveMessageBytes: read.int('GRPC_MAX_RECEIVE_MESSAGE_SIZE', DEFAULT_GRPC_LIMITS.maxReceiveMessageBytes, 1024),
    },
    grpcMaxStreamsPerToken: read.int('GRPC_MAX_STREAMS_PER_TOKEN', 4, 1),
    backends: {
      reservation: {
        grpcAddress: read.oneOf(['BACKEND_RESERVATION_GRPC_ADDRESS', 'BACKEND_RESERVATION_API_GRPC_ADDRESS'], 'localhost:8011'),
        httpBaseUrl: read.url('BACKEND_RESERVATION_API_BASE_URL', 'http://localhost:8010'),
        timeoutMs: read.durationMs('BACKEND_RESERVATION_API_TIMEOUT', 600),
      },
      payment: {
        grpcAddress: read.oneOf(['BACKEND_PAYMENT_GRPC_ADDRESS', 'BACKEND_PAYMENT_API_GRPC_ADDRESS'], 'localhost:8031'),
        httpBaseUrl: read.url('BACKEND_PAYMENT_API_BASE_URL', 'http://localhost:8030'),
        timeoutMs: read.durationMs('BACKEND_PAYMENT_API_TIMEOUT', 400),
      },
    },
    breaker: {
      failures: read.int('BACKEND_BREAKER_FAILURES', 5, 1),
      cooldownMs: read.durationMs('BACKEND_BREAKER_COOLDOWN', 5000),
    },
    redis: {
      address: read.string('REDIS_ADDRESS', 'localhost:6379'),
      password: read.optional('REDIS_PASSWORD'),
      database: read.int('REDIS_DATABASE', 0, 0, 15),
      clusterMode: read.bool('REDIS_CLUSTER_MODE', false),
      commandTimeoutMs: read.durationMs('REDIS_COMMAND_TIMEOUT', 800),
      autoPipelining: read.bool('REDIS_AUTO_PIPELINING', false),
    },
    auth: {
      production,
      development: developing,
      // Development has a known secret so `tacos token` works out of the box; production must set one.
      jwtSecret: developing ? read.string('JWT_SECRET', DEV_JWT_SECRET) : read.optional('JWT_SECRET'),
      jwtIssuer: read.optional('JWT_ISSUER'),
      jwtAudience: read.optional('JWT_AUDIENCE'),
      jwksEndpoint: read.optional('JWT_JWKS_ENDPOINT'),
      devBypassToken: developing ? read.string('DEV_BYPASS_TOKEN', DEV_BYPASS_TOKEN_DEFAULT) : undefined,
    },
    queue: {
      heartbeatTtlMs: read.durationMs('QUEUE_HEARTBEAT_TTL', 300_000),
      retentionMs: read.durationMs('QUEUE_TOKEN_RETENTION', 600_000),
      instantPositions: read.int('QUEUE_INSTANT_ADMISSION_POSITIONS', 10, 0),
      maxAdmissionPosition: read.int('QUEUE_MAX_ADMISSION_POSITION', 100, 1),
      minWaitMs: read.durationMs('QUEUE_ADMISSION_MIN_WAIT', 5000),
      admissionBurst: read.int('QUEUE_ADMISSION_BURST', 20, 1),
      admissionRatePerSecond: read.number('QUEUE_ADMISSION_RATE', 10, 0.001),
      reservationTokenTtlMs: read.durationMs('RESERVATION_TOKEN_TTL', 30_000),
      idempotencyTtlMs: read.durationMs('IDEMPOTENCY_TTL', 600_000),
      sweepIntervalMs: read.durationMs('QUEUE_SWEEP_INTERVAL', 1000),
    },
    logLevel: read.oneOfValues('LOG_LEVEL', LOG_LEVELS, 'info'),
    bodyLimitBytes: read.int('SERVER_BODY_LIMIT', 16_384, 1024),
    // Any origin in development (the web client's dev server, a test page); production lists its own.
    corsOrigins: read.list('CORS_ALLOW_ORIGINS', production ? [] : ['*'], isOrigin, '* or origins such as http://localhost:3000'),
    rateLimit: {
      enabled: read.bool('RATE_LIMIT_ENABLED', production),
      ratePerSecond: read.number('RATE_LIMIT_RPS', 50, 0.001),
      burst: read.int('RATE_LIMIT_BURST', 100, 1),
      trustedProxies: read.list('TRUSTED_PROXIES', [], isProxyEntry, 'IP addresses or CIDRs such as 10.0.0.5,10.1.0.0/16'),
    },
    shutdownGraceMs: read.durationMs('SERVER_SHUTDOWN_GRACE', 10_000),
  };
}

/** `*`, or an origin as a browser sends it: scheme://host[:port], nothing after. */
function isOrigin(value: string): boolean {
  if (value === '*') return true;
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.origin === value;
  } catch {
    return false;
  }
}
