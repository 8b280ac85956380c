// Baseline of the gateway's REST join: node:http doing the same work (read the JSON body, one
// EVALSHA, answer 202) with nothing else: no framework, validation, logging or metrics.
//   REDIS_ADDRESS=127.0.0.1:6379 node benchmarks/baselines/http.mjs PORT
import {createServer} from 'node:http';
import {connectRedis, join} from './join.mjs';

const redis = connectRedis();
const server = createServer((request, response) => {
  if (request.method !== 'POST' || request.url !== '/api/v1/queue/join') {
    response.writeHead(404).end();
    return;
  }
  const chunks = [];
  request.on('data', (chunk) => chunks.push(chunk));
  request.on('end', async () => {
    try {
      const body = JSON.parse(Buffer.concat(chunks).toString());
      const result = await join(redis, body.event_id, body.user_id, body.session_id);
      const answer = JSON.stringify({
        waiting_token: result.waitingToken,
        position_hint: result.position,
        status: 'waiting',
      });
      response.writeHead(202, {'content-type': 'application/json; charset=utf-8'}).end(answer);
    } catch (error) {
      response
        .writeHead(500, {'content-type': 'application/json; charset=utf-8'})
        .end(JSON.stringify({error: String(error)}));
    }
  });
});
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () =>
  console.log(JSON.stringify({listening: server.address().port})),
);
const stop = () => server.close(() => redis.quit().finally(() => process.exit(0)));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
