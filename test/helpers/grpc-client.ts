import * as grpc from '@grpc/grpc-js';
import {packageDefinition} from '../../src/services/server-kit/grpc/server.js';

type AnyClient = grpc.Client & Record<string, any>;

/** A grpc-js client of one of our services (e.g. 'gateway.v1.QueueService') from the compiled contracts. */
export async function contractClient(service: string, address: string): Promise<AnyClient> {
  const definition = packageDefinition();
  const Client = grpc.makeGenericClientConstructor(definition[service] as grpc.ServiceDefinition, service);
  return new Client(address, grpc.credentials.createInsecure()) as AnyClient;
}

/** A unary call as a promise; rejects with the grpc ServiceError. */
export function unaryCall<T = Record<string, any>>(
  client: AnyClient,
  method: string,
  request: unknown,
  metadata = new grpc.Metadata(),
): Promise<T> {
  return new Promise((resolve, reject) => {
    client[method](
      request,
      metadata,
      {deadline: Date.now() + 10_000},
      (error: grpc.ServiceError | null, response: T) => (error ? reject(error) : resolve(response)),
    );
  });
}

/** A server-streaming call being read: what arrived so far, and a bounded wait for the next that matches. */
export interface StreamReader<T> {
  messages: T[];
  /** The first message (already arrived or still to come) that matches; rejects after `timeoutMs` or when the stream ends without one. */
  waitFor(match: (message: T) => boolean, timeoutMs: number): Promise<T>;
  /** Settles with the stream's final status (OK, or the error), after it ended or was cancelled. */
  ended: Promise<grpc.StatusObject>;
  cancel(): void;
}

/** Starts a server-streaming call and collects its messages. */
export function streamCall<T = Record<string, any>>(
  client: AnyClient,
  method: string,
  request: unknown,
  metadata = new grpc.Metadata(),
): StreamReader<T> {
  const call = client[method](request, metadata) as grpc.ClientReadableStream<T>;
  const messages: T[] = [];
  const waiters = new Set<() => void>();
  let finished = false;
  const ended = new Promise<grpc.StatusObject>((resolve) => {
    call.on('status', (status: grpc.StatusObject) => resolve(status));
    call.on('error', (error: grpc.ServiceError) =>
      resolve({code: error.code, details: error.details, metadata: error.metadata}),
    );
  });
  const wake = () => {
    for (const waiter of [...waiters]) waiter();
  };
  call.on('data', (message: T) => {
    messages.push(message);
    wake();
  });
  void ended.then(() => {
    finished = true;
    wake();
  });
  return {
    messages,
    ended,
    cancel: () => call.cancel(),
    waitFor: (match, timeoutMs) =>
      new Promise<T>((resolve, reject) => {
        const check = () => {
          const found = messages.find(match);
          if (found !== undefined) return done(() => resolve(found));
          if (finished)
            return done(() =>
              reject(new Error(`${method} ended without a matching message; got ${JSON.stringify(messages)}`)),
            );
        };
        const timer = setTimeout(
          () =>
            done(() =>
              reject(
                new Error(`${method}: no matching message within ${timeoutMs} ms; got ${JSON.stringify(messages)}`),
              ),
            ),
          timeoutMs,
        );
        const done = (settle: () => void) => {
          clearTimeout(timer);
          waiters.delete(check);
          settle();
        };
        waiters.add(check);
        check();
      }),
  };
}
