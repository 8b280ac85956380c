import {BACKEND_PROTOCOL_HEADER} from '../gateway/booking.js';
import type {BenchOptions, Protocol, RunSide} from './options.js';

/** Replaced in a request template by the request's sequence number, so that every join is another user. */
const SEQUENCE_MARK = '{n}';

export interface HttpRequestSpec {
  kind: 'http';
  /** http://host:port */
  origin: string;
  method: 'GET' | 'POST';
  path: string;
  headers: Record<string, string>;
  /**
   * When given, request n also sends headerTurns[n mod length] (over `headers`): per-user tokens.
   * Only the builtin engine varies headers; the check before the load sends `headers` alone.
   */
  headerTurns?: Array<Record<string, string>>;
  /** The body, with SEQUENCE_MARK where the sequence number goes. */
  bodyTemplate?: string;
  /** The one status that counts as OK. */
  okStatus: number;
}

export interface GrpcRequestSpec {
  kind: 'grpc';
  /** host:port */
  address: string;
  /** /package.Service/Method */
  path: string;
  /** The request message's full name, to encode it with the contracts. */
  requestType: string;
  /** The request in proto3 JSON, with SEQUENCE_MARK where the sequence number goes. */
  requestTemplate: string;
}

export type RequestSpec = HttpRequestSpec | GrpcRequestSpec;

/** One measured run: what is sent, and which side of the gRPC / HTTP comparison it is (or the gateway's split). */
export interface RunPlan {
  label: string;
  protocol: RunSide;
  request: RequestSpec;
}

const JOIN_PATH = '/api/v1/queue/join';
const JOIN_METHOD = '/gateway.v1.QueueService/JoinQueue';
/** An event of the mocks' catalogue, whose availability the gateway asks the reservation backend for. */
const JOURNEY_EVENT = 'evt_2026_concert';
const JOURNEY_PATH = `/api/v1/events/${JOURNEY_EVENT}/availability`;

/**
 * The runs of a bench, gRPC first: `--protocol both` gives two, compared at the end. The journey
 * takes the bearer tokens in turn, one per user.
 */
export function planRuns(options: BenchOptions, bearerTokens: string[] = []): RunPlan[] {
  if (options.protocol === 'split') return [journeyRun(options, 'split', bearerTokens)];
  const protocols: Protocol[] = options.protocol === 'both' ? ['grpc', 'http'] : [options.protocol];
  return protocols.map((protocol) =>
    options.scenario === 'join' ? joinRun(options, protocol) : journeyRun(options, protocol, bearerTokens),
  );
}

function joinRun(options: BenchOptions, protocol: Protocol): RunPlan {
  const template = JSON.stringify({event_id: options.eventId, user_id: `bench-${SEQUENCE_MARK}`});
  if (protocol === 'grpc') {
    return {
      label: 'join over gRPC',
      protocol,
      request: {
        kind: 'grpc',
        address: options.grpcAddress,
        path: JOIN_METHOD,
        requestType: 'gateway.v1.JoinQueueRequest',
        requestTemplate: template,
      },
    };
  }
  return {
    label: 'join over REST',
    protocol,
    request: {
      kind: 'http',
      origin: options.httpOrigin,
      method: 'POST',
      path: JOIN_PATH,
      headers: {'content-type': 'application/json'},
      bodyTemplate: template,
      okStatus: 202,
    },
  };
}

const JOURNEY_LABELS: Record<RunSide, string> = {
  grpc: 'journey, backend over gRPC',
  http: 'journey, backend over HTTP',
  split: "journey, backend split by the gateway's share",
};

/**
 * The client speaks REST in every run; the x-tacos-backend-protocol header makes the gateway call
 * the backend over one transport, and without it (split) the gateway's sticky split picks per user.
 */
function journeyRun(options: BenchOptions, side: RunSide, bearerTokens: string[]): RunPlan {
  const authorization = (token = '') => ({authorization: `Bearer ${token}`});
  return {
    label: JOURNEY_LABELS[side],
    protocol: side,
    request: {
      kind: 'http',
      origin: options.httpOrigin,
      method: 'GET',
      path: JOURNEY_PATH,
      headers: {...authorization(bearerTokens[0]), ...(side === 'split' ? {} : {[BACKEND_PROTOCOL_HEADER]: side})},
      headerTurns: bearerTokens.length > 1 ? bearerTokens.map(authorization) : undefined,
      okStatus: 200,
    },
  };
}

/** The template with the sequence number (or a fixed tag, for engines that send one body) filled in. */
export function fillTemplate(template: string, sequence: number | string): string {
  return template.replaceAll(SEQUENCE_MARK, String(sequence));
}
