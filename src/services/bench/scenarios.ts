import {BACKEND_PROTOCOL_HEADER} from '../gateway/booking.js';
import type {BenchOptions, Protocol} from './options.js';

/** Replaced in a request template by the request's sequence number, so that every join is another user. */
const SEQUENCE_MARK = '{n}';

export interface HttpRequestSpec {
  kind: 'http';
  /** http://host:port */
  origin: string;
  method: 'GET' | 'POST';
  path: string;
  headers: Record<string, string>;
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

/** One measured run: what is sent, and which side of the gRPC / HTTP comparison it is. */
export interface RunPlan {
  label: string;
  protocol: Protocol;
  request: RequestSpec;
}

const JOIN_PATH = '/api/v1/queue/join';
const JOIN_METHOD = '/gateway.v1.QueueService/JoinQueue';
/** An event of the mocks' catalogue, whose availability the gateway asks the reservation backend for. */
const JOURNEY_EVENT = 'evt_2026_concert';
const JOURNEY_PATH = `/api/v1/events/${JOURNEY_EVENT}/availability`;

/** The runs of a bench, gRPC first: `--protocol both` gives two, compared at the end. */
export function planRuns(options: BenchOptions, bearerToken?: string): RunPlan[] {
  const protocols: Protocol[] = options.protocol === 'both' ? ['grpc', 'http'] : [options.protocol];
  return protocols.map((protocol) =>
    options.scenario === 'join' ? joinRun(options, protocol) : journeyRun(options, protocol, bearerToken),
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

/** The client speaks REST in both runs; the header makes the gateway call the backend over one transport. */
function journeyRun(options: BenchOptions, protocol: Protocol, bearerToken = ''): RunPlan {
  return {
    label: `journey, backend over ${protocol === 'grpc' ? 'gRPC' : 'HTTP'}`,
    protocol,
    request: {
      kind: 'http',
      origin: options.httpOrigin,
      method: 'GET',
      path: JOURNEY_PATH,
      headers: {authorization: `Bearer ${bearerToken}`, [BACKEND_PROTOCOL_HEADER]: protocol},
      okStatus: 200,
    },
  };
}

/** The template with the sequence number (or a fixed tag, for engines that send one body) filled in. */
export function fillTemplate(template: string, sequence: number | string): string {
  return template.replaceAll(SEQUENCE_MARK, String(sequence));
}
