import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import {loadContractSet} from '../../src/services/grpc/contracts.js';
import {LOADER_OPTIONS} from '../../src/services/grpc/server.js';

type AnyClient = grpc.Client & Record<string, any>;

/** A grpc-js client of one of our services (e.g. 'gateway.v1.QueueService') from the compiled contracts. */
export async function contractClient(service: string, address: string): Promise<AnyClient> {
  const contracts = await loadContractSet();
  const definition = protoLoader.loadFileDescriptorSetFromBuffer(Buffer.from(contracts.bytes), LOADER_OPTIONS);
  const Client = grpc.makeGenericClientConstructor(definition[service] as grpc.ServiceDefinition, service);
  return new Client(address, grpc.credentials.createInsecure()) as AnyClient;
}

/** A unary call as a promise; rejects with the grpc ServiceError. */
export function unaryCall<T = Record<string, any>>(client: AnyClient, method: string, request: unknown, metadata = new grpc.Metadata()): Promise<T> {
  return new Promise((resolve, reject) => {
    client[method](request, metadata, {deadline: Date.now() + 10_000}, (error: grpc.ServiceError | null, response: T) =>
      error ? reject(error) : resolve(response),
    );
  });
}
