import {TacosError, errorMessage} from '../errors.js';
import {loadContractSet} from '../grpc/contracts.js';
import {authInterceptor, observeInterceptor} from '../grpc/interceptors.js';
import {startGrpcServer, type RunningGrpcServer} from '../grpc/server.js';
import {createStatusEncoder} from '../grpc/status-details.js';
import type {Logger} from '../logging.js';
import {ServerMetrics} from '../metrics.js';
import {closeRedisClient, createRedisClient, type RedisClient} from '../redis/client.js';
import {TACOS_VERSION} from '../version.js';
import {Authenticator} from './auth.js';
import type {GatewayConfig} from './config.js';
import {gatewayGrpcServices, isPublicMethod} from './grpc-api.js';
import {buildHttpApi} from './http-api.js';
import {QueueService} from './queue/queue-service.js';

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

/** Starts the gateway: REST on SERVER_PORT, gRPC on GRPC_PORT when enabled, the queue on Redis. */
export async function startGateway(config: GatewayConfig, logger: Logger): Promise<RunningGateway> {
  const contracts = config.grpcEnabled ? await loadContractSet() : undefined;
  const redis = createRedisClient(config.redis, 'tacos-gateway');
  redis.on('error', (error: Error) => logger.debug({err: error.message}, 'redis connection'));
  const queue = new QueueService(redis, config.queue, logger);
  const metrics = new ServerMetrics();
  const shutdown = new AbortController();
  let grpc: RunningGrpcServer | undefined;

  const notReadyReason = async (): Promise<string | undefined> => {
    if (shutdown.signal.aborted) return 'the gateway is shutting down';
    try {
      await redis.ping();
      return undefined;
    } catch (error) {
      return `Redis at ${config.redis.address} is unreachable: ${errorMessage(error)}`;
    }
  };
  // gRPC health follows Redis: NOT_SERVING while the queue's store is away.
  const followRedis = (status: 'SERVING' | 'NOT_SERVING') => () => {
    for (const service of ['', 'gateway.v1.QueueService', 'gateway.v1.WebSocketService', 'gateway.v1.GatewayService']) {
      grpc?.setHealth(service, status);
    }
  };
  redis.on('ready', followRedis('SERVING'));
  redis.on('close', followRedis('NOT_SERVING'));

  // Serve from the first request when Redis is there; when it is not, start anyway (not ready).
  await waitUntilReady(redis, config.redis.commandTimeoutMs * 2);
  const http = buildHttpApi({queue, metrics, logger, bodyLimitBytes: config.bodyLimitBytes, version: TACOS_VERSION, notReadyReason});
  const stopAll = async () => {
    shutdown.abort();
    await Promise.allSettled([http.close(), grpc?.close(config.shutdownGraceMs)]);
    queue.close();
    await closeRedisClient(redis);
  };
  try {
    await http.listen({host: config.host, port: config.httpPort}).catch((error: unknown) => {
      throw new TacosError(`Cannot serve HTTP on ${config.host}:${config.httpPort}: ${errorMessage(error)}`, {
        hint: 'Another process may hold the port: pick another with SERVER_PORT, or stop that process.',
        code: 'PORT_IN_USE',
        cause: error,
      });
    });
    if (contracts) {
      const authenticator = new Authenticator(config.auth);
      const encode = createStatusEncoder(contracts.registry);
      grpc = await startGrpcServer({
        host: config.host,
        port: config.grpcPort,
        contracts,
        tls: config.grpcTls,
        services: gatewayGrpcServices({queue, authenticator, encode, shutdown: shutdown.signal, notReadyReason, version: TACOS_VERSION}),
        interceptors: [observeInterceptor(metrics, logger), authInterceptor(isPublicMethod, (header) => authenticator.authenticate(header), encode)],
      });
      if (redis.status !== 'ready') followRedis('NOT_SERVING')();
    }
  } catch (error) {
    await stopAll();
    throw error;
  }
  queue.start();

  const address = http.server.address();
  const httpPort = typeof address === 'object' && address ? address.port : config.httpPort;
  logger.info({http: `http://${config.host}:${httpPort}`, grpc: grpc ? `grpc://${config.host}:${grpc.port}` : 'disabled'}, 'gateway listening');
  let closing: Promise<void> | undefined;
  return {
    httpPort,
    grpcPort: grpc?.port,
    close: () => (closing ??= stopAll()),
  };
}
