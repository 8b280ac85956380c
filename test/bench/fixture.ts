/** A real redis-server and a gateway on it, started before the tests of a file and stopped after them. */
import {afterAll, beforeAll} from 'vitest';
import {startTestGateway, waitForReady, type TestGateway} from '../helpers/gateway.js';
import {disposeRedis, startRedis, type RedisProcess} from '../helpers/redis.js';

export function gatewayFixture() {
  let redis: RedisProcess | undefined;
  let gateway: TestGateway | undefined;
  beforeAll(async () => {
    redis = await startRedis();
    gateway = await startTestGateway({REDIS_ADDRESS: redis.address, LOG_LEVEL: 'warn'});
    await waitForReady(gateway);
  });
  afterAll(async () => {
    await gateway?.close();
    await disposeRedis(redis);
  });
  return {
    redis: () => redis!,
    gateway: () => gateway!,
    /** The gateway's two doors as `tacos bench` flags. */
    targetFlags: () => ['--http-url', gateway!.http, '--grpc-addr', gateway!.grpc],
  };
}
