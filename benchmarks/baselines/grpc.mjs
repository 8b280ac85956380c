// Baseline of the gateway's gRPC JoinQueue: @grpc/grpc-js with the same .proto (proto-loader) doing
// the same work (one EVALSHA) with nothing else: no interceptors, validation, logging or metrics.
//   REDIS_ADDRESS=127.0.0.1:6379 node benchmarks/baselines/grpc.mjs PORT
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {Server, ServerCredentials, loadPackageDefinition} from '@grpc/grpc-js';
import {loadSync} from '@grpc/proto-loader';
import {connectRedis, join} from './join.mjs';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const definition = loadSync('proto/gateway/v1/queue.proto', {
  includeDirs: [root, path.join(root, 'third_party')],
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
});
const {gateway} = loadPackageDefinition(definition);
const redis = connectRedis();
const server = new Server();
server.addService(gateway.v1.QueueService.service, {
  JoinQueue: (call, callback) => {
    const {event_id: eventId, user_id: userId, session_id: sessionId} = call.request;
    join(redis, eventId, userId, sessionId).then(
      (result) =>
        callback(null, {
          waiting_token: result.waitingToken,
          position_hint: result.position,
          status: 'QUEUE_STATUS_WAITING',
        }),
      (error) => callback({code: 13, details: String(error)}),
    );
  },
});
server.bindAsync(`127.0.0.1:${process.argv[2] ?? 0}`, ServerCredentials.createInsecure(), (error, port) => {
  if (error) throw error;
  console.log(JSON.stringify({listening: port}));
});
const stop = () => server.tryShutdown(() => redis.quit().finally(() => process.exit(0)));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
