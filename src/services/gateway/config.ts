import {EnvReader, type Environment} from '../config.js';
import {TacosError} from '../errors.js';
import {LOG_LEVELS, type LogLevel} from '../logging.js';
import {isProxyEntry, type RateLimitSettings} from '../server-kit/http/rate-limit.js';
import {isLoopbackHost} from '../net.js';
import {DEFAULT_HTTP_LIMITS, type HttpLimits} from '../server-kit/http/limits.js';
import {DEFAULT_GRPC_LIMITS, type GrpcLimits} from '../server-kit/grpc/limits.js';
import {
  readRedisSettings,
  REDIS_COMMAND_TIMEOUT,
  REDIS_COMMAND_TIMEOUT_MS,
  type RedisSettings,
} from '../redis/client.js';
import type {BookingLimits} from './booking.js';
import {DEFAULT_CATALOG_FILE} from '../catalog.js';
import {EVENT_ID} from './queue/keys.js';
import type {QueueSettings} from './queue/queue-service.js';
import {DEFAULT_LIVE_SOCKET_SETTINGS, type LiveSocketSettings} from './live/live-server.js';
import {readRolloutSettings, type RolloutSettings} from './rollout/settings.js';

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
  /** Longest lifetime (exp - iat, and exp - now) of a token the gateway accepts. */
  maxTokenLifetimeSeconds: number;
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
  /** SERVER_ENVIRONMENT is unset: `environment` is the development default. */
  environmentDefaulted: boolean;
  /** At start: whether the gRPC port opens (changing it needs a restart); the live value is in `rollout`. */
  grpcEnabled: boolean;
  grpcPort: number;
  grpcTls?: {certFile: string; keyFile: string};
  grpcLimits: GrpcLimits;
  /** The settings a reload applies without a restart, as read at start (rollout/live-settings.ts). */
  rollout: RolloutSettings;
  backends: {reservation: BackendSettings; payment: BackendSettings};
  breaker: {failures: number; cooldownMs: number};
  /** Limits of one user's booking calls, checked before any backend call. */
  booking: BookingLimits;
  redis: RedisSettings;
  auth: AuthSettings;
  queue: QueueSettings;
  /** The catalogue whose events the queue takes joins for (the reservation mock's). */
  catalogFile: string;
  logLevel: LogLevel;
  /** Largest request body the REST API reads. */
  bodyLimitBytes: number;
  /** The REST door's timeouts and connection cap. */
  httpLimits: HttpLimits;
  /** Origins browsers may call from; `*` for any; empty for no CORS. */
  corsOrigins: string[];
  rateLimit: RateLimitSettings;
  /** How long a stop waits for calls in flight. */
  shutdownGraceMs: number;
  /** The WebSocket and SSE routes' pings and cap. */
  live: LiveSocketSettings;
}

export const DEV_BYPASS_TOKEN_DEFAULT = 'tacos-dev-token';
export const DEV_JWT_SECRET = 'tacos-dev-secret';
/** As long as the tokens sign-in issues live (users.ts, test/fixtures/contracts/REST.md 1.3). */
export const MAX_TOKEN_LIFETIME_DEFAULT_MS = 86_400_000;

/** The gateway's settings from the environment (README, "Environment variables"); a bad value names its variable. */
export function readGatewayConfig(env: Environment): GatewayConfig {
  const read = new EnvReader(env);
  const environmentSet = read.optional('SERVER_ENVIRONMENT');
  const environment = environmentSet ?? 'development';
  // Shortcuts are on only where the environment says it is one for development, whatever its spelling.
  const production = /^prod(uction)?$/i.test(environment);
  const developing = /^(development|dev|local|test)$/i.test(environment);
  const tls = read.bool('GRPC_USE_TLS', false);
  const redisCommandTimeoutMs = read.durationMs(REDIS_COMMAND_TIMEOUT, REDIS_COMMAND_TIMEOUT_MS);
  const rollout = readRolloutSettings(env);
  return {
    host: read.string('SERVER_HOST', '127.0.0.1'),
    httpPort: read.port('SERVER_PORT', 8000),
    environment,
    environmentDefaulted: environmentSet === undefined,
    grpcEnabled: rollout.grpcEnabled,
    grpcPort: read.port('GRPC_PORT', 9090),
    grpcTls: tls
      ? {
          certFile: read.string('GRPC_TLS_CERT', 'certs/server.crt'),
          keyFile: read.string('GRPC_TLS_KEY', 'certs/server.key'),
        }
      : undefined,
    rollout,
    grpcLimits: {
      maxConnections: read.int('GRPC_MAX_CONNECTIONS', DEFAULT_GRPC_LIMITS.maxConnections, 1),
      handshakeTimeoutMs: read.durationMs('GRPC_HANDSHAKE_TIMEOUT', DEFAULT_GRPC_LIMITS.handshakeTimeoutMs),
      pingTimeoutMs: read.durationMs('GRPC_KEEPALIVE_TIMEOUT', DEFAULT_GRPC_LIMITS.pingTimeoutMs),
      minPingIntervalMs: read.durationMs('GRPC_KEEPALIVE_MIN_PING_INTERVAL', DEFAULT_GRPC_LIMITS.minPingIntervalMs),
      idleTimeoutMs: read.durationMs('GRPC_MAX_CONNECTION_IDLE', DEFAULT_GRPC_LIMITS.idleTimeoutMs),
      maxConnectionAgeMs: read.durationMs('GRPC_MAX_CONNECTION_AGE', DEFAULT_GRPC_LIMITS.maxConnectionAgeMs),
      maxConnectionAgeGraceMs: read.durationMs(
        'GRPC_MAX_CONNECTION_AGE_GRACE',
        DEFAULT_GRPC_LIMITS.maxConnectionAgeGraceMs,
      ),
      keepaliveTimeMs: read.durationMs('GRPC_KEEPALIVE_TIME', DEFAULT_GRPC_LIMITS.keepaliveTimeMs),
      maxConcurrentStreams: read.int('GRPC_MAX_CONCURRENT_STREAMS', DEFAULT_GRPC_LIMITS.maxConcurrentStreams, 1),
      maxReceiveMessageBytes: read.int(
        'GRPC_MAX_RECEIVE_MESSAGE_SIZE',
        DEFAULT_GRPC_LIMITS.maxReceiveMessageBytes,
        1024,
      ),
    },
    backends: {
      reservation: {
        grpcAddress: read.oneOf(
          ['BACKEND_RESERVATION_GRPC_ADDRESS', 'BACKEND_RESERVATION_API_GRPC_ADDRESS'],
          'localhost:8011',
        ),
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
    booking: {
      maxSeatsPerOrder: read.int('BOOKING_MAX_SEATS_PER_ORDER', 10, 1, 1000),
      maxTextLength: read.int('BOOKING_MAX_FIELD_LENGTH', 512, 16, 65_536),
      maxInFlightPerUser: read.int('BOOKING_MAX_IN_FLIGHT_PER_USER', 4, 1, 1000),
    },
    redis: readRedisSettings(read),
    auth: {
      production,
      development: developing,
      // Development has a known secret so `tacos token` works out of the box; production must set one.
      jwtSecret: developing ? read.string('JWT_SECRET', DEV_JWT_SECRET) : read.optional('JWT_SECRET'),
      jwtIssuer: read.optional('JWT_ISSUER'),
      jwtAudience: read.optional('JWT_AUDIENCE'),
      jwksEndpoint: read.optional('JWT_JWKS_ENDPOINT'),
      devBypassToken: developing ? read.string('DEV_BYPASS_TOKEN', DEV_BYPASS_TOKEN_DEFAULT) : undefined,
      maxTokenLifetimeSeconds: Math.floor(
        read.durationMs('JWT_MAX_LIFETIME', MAX_TOKEN_LIFETIME_DEFAULT_MS, 1000) / 1000,
      ),
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
      // The catalogue's events are added when the gateway starts (it reads RESERVATION_CATALOG).
      events: read.list('QUEUE_EVENTS', [], isEventId, 'event ids such as evt_2026_concert,evt_2026_musical'),
      openUnknownEvents: developing,
      maxOpenEvents: read.int('QUEUE_MAX_OPEN_EVENTS', 1000, 1),
      // A join answers by the time Redis would time out, stored or not.
      joinTimeoutMs: redisCommandTimeoutMs,
      deadlineMarginMs: read.durationMs('QUEUE_JOIN_DEADLINE_MARGIN', 5),
      statsPageSize: read.int('QUEUE_STATS_PAGE_SIZE', 100, 1, 1000),
      // Named for the first door that had streams; it bounds WebSocket and SSE streams too.
      maxWatchersPerToken: read.int('GRPC_MAX_STREAMS_PER_TOKEN', 4, 1),
    },
    catalogFile: read.string('RESERVATION_CATALOG', DEFAULT_CATALOG_FILE),
    logLevel: read.oneOfValues('LOG_LEVEL', LOG_LEVELS, 'info'),
    bodyLimitBytes: read.int('SERVER_BODY_LIMIT', 16_384, 1024),
    httpLimits: {
      headersTimeoutMs: read.durationMs('SERVER_HEADERS_TIMEOUT', DEFAULT_HTTP_LIMITS.headersTimeoutMs),
      requestTimeoutMs: read.durationMs('SERVER_REQUEST_TIMEOUT', DEFAULT_HTTP_LIMITS.requestTimeoutMs),
      keepAliveTimeoutMs: read.durationMs('SERVER_KEEP_ALIVE_TIMEOUT', DEFAULT_HTTP_LIMITS.keepAliveTimeoutMs),
      maxConnections: read.int('SERVER_MAX_CONNECTIONS', DEFAULT_HTTP_LIMITS.maxConnections, 1),
    },
    // Any origin in development (the web client's dev server, a test page); production lists its own.
    corsOrigins: read.list(
      'CORS_ALLOW_ORIGINS',
      production ? [] : ['*'],
      isOrigin,
      '* or origins such as http://localhost:3000',
    ),
    rateLimit: {
      enabled: read.bool('RATE_LIMIT_ENABLED', production),
      ratePerSecond: read.number('RATE_LIMIT_RPS', 50, 0.001),
      burst: read.int('RATE_LIMIT_BURST', 100, 1),
      trustedProxies: read.list(
        'TRUSTED_PROXIES',
        [],
        isProxyEntry,
        'IP addresses or CIDRs such as 10.0.0.5,10.1.0.0/16',
      ),
    },
    shutdownGraceMs: read.durationMs('SERVER_SHUTDOWN_GRACE', 10_000),
    live: {
      pingIntervalMs: read.durationMs('LIVE_PING_INTERVAL', DEFAULT_LIVE_SOCKET_SETTINGS.pingIntervalMs, 10),
      maxSockets: read.int('LIVE_MAX_SOCKETS', DEFAULT_LIVE_SOCKET_SETTINGS.maxSockets, 1),
      sseRetryMs: read.durationMs('LIVE_SSE_RETRY', DEFAULT_LIVE_SOCKET_SETTINGS.sseRetryMs),
    },
  };
}

/**
 * Refuses settings that would open the gateway by default: development shortcuts (the bypass token,
 * the public dev secret) on an address others reach because SERVER_ENVIRONMENT was forgotten, or an
 * environment outside development with no key, whose gateway would start "ready" and refuse every token.
 */
export function checkClosedByDefault(config: GatewayConfig): void {
  if (config.environmentDefaulted && !isLoopbackHost(config.host)) {
    throw new TacosError(
      `SERVER_ENVIRONMENT is not set and SERVER_HOST=${config.host} is not a loopback address: the gateway refuses to serve development shortcuts (the bypass token, the public development secret) beyond this machine.`,
      {
        hint: 'Set SERVER_ENVIRONMENT=production for a shared address (or SERVER_ENVIRONMENT=development if the shortcuts are meant to be reachable), or bind SERVER_HOST=127.0.0.1.',
        code: 'INVALID_CONFIG',
      },
    );
  }
  const {auth} = config;
  if (auth.development) return;
  if (!auth.jwtSecret && !auth.jwksEndpoint) {
    throw new TacosError(
      `SERVER_ENVIRONMENT=${config.environment} needs JWT_SECRET or JWT_JWKS_ENDPOINT: without a key the gateway would refuse every token.`,
      {
        hint: 'Set JWT_SECRET (HS256) or JWT_JWKS_ENDPOINT (RS256/ES256) in the env file or the environment.',
        code: 'INVALID_CONFIG',
      },
    );
  }
  if (auth.jwtSecret === DEV_JWT_SECRET) {
    throw new TacosError(
      `SERVER_ENVIRONMENT=${config.environment} cannot use the public development secret as JWT_SECRET: anyone could sign tokens.`,
      {
        hint: 'Set JWT_SECRET to a secret of your own (such as `openssl rand -hex 32`).',
        code: 'INVALID_CONFIG',
      },
    );
  }
}

function isEventId(value: string): boolean {
  return EVENT_ID.test(value);
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
