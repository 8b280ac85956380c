import cluster from 'node:cluster';
import {setMaxListeners} from 'node:events';
import {listenHttp} from '../server-kit/http/listen.js';
import {RedisRateLimiter} from '../server-kit/http/rate-limit.js';
import {closeHttpServer} from '../server-kit/http/server.js';
import type {GrpcRefusal} from '../server-kit/grpc/limits.js';
import {loadContractSet} from '../contracts.js';
import {authInterceptor, observeInterceptor} from '../server-kit/grpc/interceptors.js';
import {packageDefinition, startGrpcServer, type RunningGrpcServer} from '../server-kit/grpc/server.js';
import {createStatusEncoder} from '../server-kit/grpc/status-details.js';
import {accessLogger, type Logger} from '../logging.js';
import {ServerMetrics} from '../server-kit/metrics.js';
import {closeRedisClient, createRedisClient, logRedisOutages, type RedisClient} from '../redis/client.js';
import {TACOS_VERSION} from '../version.js';
import {Authenticator} from './auth.js';
import {createBackendClients} from './backend-clients.js';
import {BACKEND_PROTOCOL_HEADER, BookingService} from './booking.js';
import {addBookingRoutes} from './booking-routes.js';
import {addAuthRoutes} from './auth-routes.js';
import {checkClosedByDefault, type GatewayConfig} from './config.js';
import {gatewayGrpcServices, isPublicMethod} from './grpc-api.js';
import {buildHttpApi} from './http-api.js';
import {addConnectRoutes, CONNECT_CORS_HEADERS, privateGrpcSocket} from './connect/connect-api.js';
import {loadCatalog} from '../catalog.js';
import {QueueService} from './queue/queue-service.js';
import {LiveMetrics} from './live/live-metrics.js';
import {LiveServer} from './live/live-server.js';
import {queueRoute} from './live/queue-route.js';
import {ProtoJson} from './live/proto-json.js';
import {userRoutes} from './live/user-routes.js';
import {UserUpdates} from './live/user-updates.js';
import {UserTokens} from './user-tokens.js';
import {UserStore, seedDevelopmentUsers} from './users.js';
import {RolloutController} from './rollout/controller.js';
import {
  gatherRolloutStates,
  joinClusterRollout,
  requestClusterReset,
  sendRollbackChange,
} from './rollout/cluster-sync.js';
import {LiveSettings} from './rollout/live-settings.js';
import {registerRolloutMetrics} from './rollout/rollout-metrics.js';
import {addRolloutRoutes} from './rollout/rollout-routes.js';
import {rolloutState, rolloutStatusBody} from './rollout/status.js';
import {GATEWAY_SERVICE, QUEUE_SERVICE, WEBSOCKET_SERVICE} from '../service-names.js';

async function waitUntilReady(redis: RedisClient, timeoutMs: number): Promise<void> {
  if (redis.status === 'ready') return;
  await new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      redis.off('ready', done);
      resolve();
    };
    const timer = setTimeout(done, timeoutMs);
    redis.on('ready', done);
  });
}

export interface RunningGateway {
  httpPort: number;
  /** Undefined when GRPC_ENABLED is false. */
  grpcPort?: number;
  /** Stops taking new work, finishes what is in flight, closes Redis; safe to call twice. */
  close(): Promise<void>;
}

/**
 * Starts the gateway: REST on SERVER_PORT, gRPC on GRPC_PORT when enabled, the queue on Redis.
 * `live`: the settings reloads apply (serve.ts); without it, `config.rollout` for good.
 */
export async function startGateway(
  config: GatewayConfig,
  logger: Logger,
  live: LiveSettings = LiveSettings.fixed(config.rollout, logger),
): Promise<RunningGateway> {
  checkClosedByDefault(config);
  const contracts = await loadContractSet();
  // The queue takes joins for the catalogue's events, besides QUEUE_EVENTS and those opened at run time.
  const catalog = await loadCatalog(config.catalogFile);
  const redis = createRedisClient(config.redis, 'tacos-gateway');
  logRedisOutages(redis, logger, config.redis.address);
  const queue = new QueueService(
    redis,
    {...config.queue, events: [...config.queue.events, ...catalog.events.map((event) => event.id)]},
    logger,
  );
  const metrics = new ServerMetrics();
  queue.metrics.register(metrics.registry);
  // The gRPC share of backend calls and the automatic rollback; in a cluster, shared with the other workers.
  const inCluster = cluster.isWorker;
  const policy = new RolloutController(live.settings, logger, inCluster ? sendRollbackChange : undefined);
  live.onApply((settings) => policy.apply(settings));
  registerRolloutMetrics(metrics.registry, policy, live);
  const leaveCluster = inCluster ? joinClusterRollout(policy, live) : undefined;
  const rolloutStatus = async () => {
    if (!inCluster) return rolloutStatusBody(process.pid, [], [rolloutState(policy, live)]);
    const states = await gatherRolloutStates();
    return rolloutStatusBody(
      process.ppid,
      states.map((state) => state.pid).sort((a, b) => a - b),
      states,
    );
  };
  const shutdown = new AbortController();
  // Every open stream listens for the stop: as many listeners as streams, by design.
  setMaxListeners(0, shutdown.signal);
  let grpc: RunningGrpcServer | undefined;

  const notReadyReason = async (): Promise<string | undefined> => {
    if (shutdown.signal.aborted) return 'the gateway is shutting down';
    try {
      await redis.ping();
      return undefined;
    } catch {
      // Where Redis is and why it failed are in the log's outage line, not in a public answer.
      return 'Redis is unreachable';
    }
  };
  // gRPC health follows Redis: NOT_SERVING while the queue's store is away.
  const followRedis = (status: 'SERVING' | 'NOT_SERVING') => () => {
    for (const service of ['', QUEUE_SERVICE, WEBSOCKET_SERVICE, GATEWAY_SERVICE]) {
      grpc?.setHealth(service, status);
    }
  };
  redis.on('ready', followRedis('SERVING'));
  redis.on('close', followRedis('NOT_SERVING'));

  // Serve from the first request when Redis is there; when it is not, start anyway (not ready).
  await waitUntilReady(redis, config.redis.commandTimeoutMs * 2);
  const authenticator = new Authenticator(config.auth);
  const backends = createBackendClients(config, contracts, logger, policy, metrics.registry);
  // The users' reservation and payment streams, fed by what booking changes (and the backends publish).
  const updates = new UserUpdates(redis, logger);
  const booking = new BookingService(backends.reservation, backends.payment, queue, {
    limits: config.booking,
    production: config.auth.production,
    logger,
    onRefused: (code) => metrics.bookingRefusals.inc({code}),
    updates,
  });
  const rateLimiter = config.rateLimit.enabled ? new RedisRateLimiter(redis, config.rateLimit, logger) : undefined;
  const http = buildHttpApi({
    queue,
    authenticator,
    metrics,
    logger,
    bodyLimitBytes: config.bodyLimitBytes,
    limits: config.httpLimits,
    corsOrigins: config.corsOrigins,
    corsHeaders: CONNECT_CORS_HEADERS,
    rateLimiter,
    version: TACOS_VERSION,
    notReadyReason,
  });
  addBookingRoutes(http, {
    booking,
    authenticator,
    registry: contracts.registry,
    definition: packageDefinition(),
    production: config.auth.production,
  });
  // Connect and gRPC-Web on the HTTP port, answered by the gRPC server (on a private socket even when GRPC_ENABLED is off).
  const grpcSocket = await privateGrpcSocket();
  const connect = addConnectRoutes(http, {
    registry: contracts.registry,
    services: [QUEUE_SERVICE, WEBSOCKET_SERVICE, GATEWAY_SERVICE],
    socketPath: grpcSocket.path,
    forwardedHeaders: ['authorization', 'idempotency-key', BACKEND_PROTOCOL_HEADER],
    grpcLimits: config.grpcLimits,
    maxHttpConnections: config.httpLimits.maxConnections,
  });
  const users = new UserStore(redis);
  const tokens = new UserTokens(config.auth);
  addAuthRoutes(http, {users, tokens});
  const resetRollbacks = async () => {
    policy.reset();
    if (inCluster) await requestClusterReset();
  };
  addRolloutRoutes(http, {authenticator, status: rolloutStatus, reset: resetRollbacks});
  const liveMetrics = new LiveMetrics();
  liveMetrics.register(metrics.registry);
  const protoJson = new ProtoJson(contracts.registry, packageDefinition());
  const liveRoutes = [queueRoute(queue.feed), ...userRoutes(updates, authenticator, protoJson)];
  const liveServer = new LiveServer(http, liveRoutes, {
    settings: config.live,
    logger,
    metrics,
    liveMetrics,
    corsOrigins: config.corsOrigins,
    rateLimiter,
  });
  if (!tokens.canSign) logger.warn('JWT_SECRET is not set: /api/v1/auth/register and /login answer 503 until it is');
  const stopAll = async () => {
    shutdown.abort();
    policy.close();
    leaveCluster?.();
    await Promise.allSettled([
      liveServer.close(config.shutdownGraceMs),
      closeHttpServer(http, config.shutdownGraceMs),
      grpc?.close(config.shutdownGraceMs),
    ]);
    connect.close();
    await grpcSocket.remove();
    await queue.close();
    updates.close();
    await Promise.allSettled([closeRedisClient(redis), backends.reservation.close(), backends.payment.close()]);
  };
  try {
    await listenHttp(http, config.host, config.httpPort, 'SERVER_PORT');
    const countRefusal = (reason: GrpcRefusal) => metrics.refusals.inc({door: 'grpc', reason});
    const encode = createStatusEncoder(contracts.registry, logger);
    grpc = await startGrpcServer({
      host: config.host,
      port: config.grpcEnabled ? config.grpcPort : undefined,
      localSocket: grpcSocket.path,
      contracts,
      tls: config.grpcTls,
      portVariable: 'GRPC_PORT',
      limits: config.grpcLimits,
      onRefusal: countRefusal,
      services: gatewayGrpcServices({
        queue,
        booking,
        updates,
        authenticator,
        encode,
        shutdown: shutdown.signal,
        notReadyReason,
        version: TACOS_VERSION,
        production: config.auth.production,
        onRefusal: countRefusal,
      }),
      interceptors: [
        observeInterceptor(metrics, accessLogger(logger)),
        authInterceptor(isPublicMethod, (header) => authenticator.authenticate(header), encode),
      ],
    });
    if (redis.status !== 'ready') followRedis('NOT_SERVING')();
  } catch (error) {
    await stopAll();
    throw error;
  }
  queue.start();
  policy.start();
  // Development only: the test users the web client's login page hints at.
  if (config.auth.development) seedDevelopmentUsers(users, redis, logger, shutdown.signal);

  const address = http.server.address();
  const httpPort = typeof address === 'object' && address ? address.port : config.httpPort;
  logger.info(
    {
      http: `http://${config.host}:${httpPort}`,
      grpc: config.grpcEnabled ? `grpc://${config.host}:${grpc?.port}` : 'disabled',
    },
    'gateway listening',
  );
  let closing: Promise<void> | undefined;
  return {
    httpPort,
    grpcPort: config.grpcEnabled ? grpc?.port : undefined,
    close: () => (closing ??= stopAll()),
  };
}

/** Stops a running gateway for `signal` (finishing what is in flight), with the lines that say so. */
export async function stopGateway(gateway: RunningGateway, logger: Logger, signal: string): Promise<void> {
  logger.info({signal}, 'gateway stopping');
  await gateway.close();
  logger.info('gateway stopped');
  logger.flush();
}
