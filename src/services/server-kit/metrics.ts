import cluster, {type Worker} from 'node:cluster';
import {AggregatorRegistry, Counter, Histogram, Registry, collectDefaultMetrics} from 'prom-client';
import {errorMessage} from '../errors.js';
import {PendingReplies, isIpcMessage} from './cluster-ipc.js';

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * Under node:cluster every worker counts what it serves, and /metrics on any worker answers for the
 * whole gateway: the worker asks the primary (ASK), which collects each listening worker's metrics
 * (COLLECT / COLLECTED) and sums them with prom-client's AggregatorRegistry.aggregate (ANSWER).
 * Not AggregatorRegistry.clusterMetrics(): it asks every connected worker, a replacement still
 * starting included, which cannot answer yet, so that scrape would wait 5 s and fail.
 */
const ASK = 'tacos:metrics:ask';
const ANSWER = 'tacos:metrics:answer';
const COLLECT = 'tacos:metrics:collect';
const COLLECTED = 'tacos:metrics:collected';
/** Per worker, in the primary; the worker waits a little longer for the primary's answer. */
const COLLECT_TIMEOUT_MS = 3000;
const ASK_TIMEOUT_MS = 5000;

type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;
interface MetricsMessage {
  type: string;
  id: number;
  text?: string;
  metrics?: MetricsJson;
  error?: string;
}

/** Prometheus metrics of one server, with the names the Go gateway and go-grpc-prometheus use. */
export class ServerMetrics {
  readonly registry = new Registry();

  readonly httpRequests = new Counter({
    name: 'http_server_requests_total',
    help: 'HTTP requests handled, by method, route and status code.',
    labelNames: ['method', 'route', 'status_code'] as const,
    registers: [this.registry],
  });

  readonly httpDuration = new Histogram({
    name: 'http_server_requests_duration_seconds',
    help: 'HTTP request latency in seconds.',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  readonly grpcStarted = new Counter({
    name: 'grpc_server_started_total',
    help: 'RPCs started on the server.',
    labelNames: ['grpc_type', 'grpc_service', 'grpc_method'] as const,
    registers: [this.registry],
  });

  readonly grpcHandled = new Counter({
    name: 'grpc_server_handled_total',
    help: 'RPCs completed on the server, whatever their status.',
    labelNames: ['grpc_type', 'grpc_service', 'grpc_method', 'grpc_code'] as const,
    registers: [this.registry],
  });

  readonly grpcHandlingSeconds = new Histogram({
    name: 'grpc_server_handling_seconds',
    help: 'Time from the start of an RPC to its status, in seconds.',
    labelNames: ['grpc_type', 'grpc_service', 'grpc_method'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  readonly bookingRefusals = new Counter({
    name: 'gateway_booking_refusals_total',
    help: 'Booking calls refused at the door before any backend call (too many seats, a text too long, too many in flight), by code.',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });

  /**
   * Connections and requests a door refused before any route saw them (a connection cap, a request
   * too slow to arrive, headers too large): `door` is http or grpc, `reason` says which bound.
   */
  readonly refusals = new Counter({
    name: 'gateway_refusals_total',
    help: 'Connections and requests refused at a door before reaching a route, by door and reason.',
    labelNames: ['door', 'reason'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({register: this.registry});
    if (cluster.isWorker) workerMetrics.share(this.registry);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text /metrics serves: in a cluster worker, that of all the workers. */
  text(): Promise<string> {
    return cluster.isWorker ? workerMetrics.askPrimary() : this.registry.metrics();
  }
}

/** A cluster worker's half: sends its own metrics when the primary collects, asks it for the sum. */
class WorkerMetrics {
  private readonly registries: Registry[] = [];
  private readonly asks = new PendingReplies<'primary', MetricsMessage>();

  share(registry: Registry): void {
    if (this.registries.length === 0) process.on('message', (message) => this.onMessage(message));
    this.registries.push(registry);
  }

  async askPrimary(): Promise<string> {
    const reply = await this.asks.request(
      'primary',
      ASK_TIMEOUT_MS,
      () => new Error(`The gateway's primary process sent no metrics within ${ASK_TIMEOUT_MS} ms.`),
      (id, failed) => process.send?.({type: ASK, id}, (error: Error | null) => error && failed(error)),
    );
    if (reply instanceof Error) throw reply;
    if (reply?.error !== undefined) throw new Error(`Cannot collect the gateway workers' metrics: ${reply.error}`);
    return reply?.text ?? '';
  }

  private onMessage(message: unknown): void {
    if (isIpcMessage<MetricsMessage>(message, COLLECT)) {
      void Promise.all(this.registries.map((registry) => registry.getMetricsAsJSON()))
        .then(
          (metrics) => ({metrics: metrics.flat()}),
          (error: unknown) => ({error: errorMessage(error)}),
        )
        // A primary already gone cannot be answered: nothing to do.
        .then((reply) => process.send?.({type: COLLECTED, id: message.id, ...reply}, () => undefined));
    } else if (isIpcMessage<MetricsMessage>(message, ANSWER)) {
      this.asks.reply(message);
    }
  }
}

const workerMetrics = new WorkerMetrics();

/**
 * The primary's half: answers each worker's ASK with the sum of the metrics of `members()` (the
 * workers that are listening). Returns the function that stops answering.
 */
export function answerClusterMetrics(members: () => Worker[]): () => void {
  const collecting = new PendingReplies<Worker, MetricsMessage>();

  const collect = async (worker: Worker): Promise<MetricsJson> => {
    const reply = await collecting.request(
      worker,
      COLLECT_TIMEOUT_MS,
      () => new Error(`worker ${worker.process.pid} did not answer within ${COLLECT_TIMEOUT_MS} ms`),
      // Not sent: the worker is going away, with nothing left to count.
      (id, failed) => worker.send({type: COLLECT, id}, (error) => error && failed(undefined)),
    );
    if (reply instanceof Error) throw reply;
    if (reply?.error !== undefined) throw new Error(reply.error);
    return reply?.metrics ?? [];
  };

  const answer = (worker: Worker, id: number) =>
    void Promise.all(members().map(collect))
      .then((all) => AggregatorRegistry.aggregate(all.filter((metrics) => metrics.length > 0)).metrics())
      .then(
        (text) => ({text}),
        (error: unknown) => ({error: errorMessage(error)}),
      )
      .then((reply) => worker.isConnected() && worker.send({type: ANSWER, id, ...reply}, () => undefined));

  const onMessage = (worker: Worker, message: unknown) => {
    if (isIpcMessage<MetricsMessage>(message, COLLECTED)) collecting.reply(message);
    else if (isIpcMessage<MetricsMessage>(message, ASK)) answer(worker, message.id);
  };
  const onExit = (worker: Worker) => collecting.abandon(worker);
  cluster.on('message', onMessage);
  cluster.on('exit', onExit);
  return () => {
    cluster.off('message', onMessage);
    cluster.off('exit', onExit);
  };
}
