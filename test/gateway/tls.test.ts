import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {selfSignedCert} from '../helpers/call-servers.js';
import {runCli} from '../helpers/cli.js';
import {startTestGateway, waitForReady, type TestGateway} from '../helpers/gateway.js';
import {disposeRedis, startRedis, type RedisProcess} from '../helpers/redis.js';

let dir: string;
let redis: RedisProcess | undefined;
let gateway: TestGateway | undefined;
let cert: {key: string; cert: string} | {skip: string};

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tacos-gateway-tls-'));
  cert = await selfSignedCert(dir);
  if ('skip' in cert) {
    console.log(`skipping the gateway TLS test: ${cert.skip}`);
    return;
  }
  redis = await startRedis();
  gateway = await startTestGateway({
    REDIS_ADDRESS: redis.address,
    GRPC_USE_TLS: 'true',
    GRPC_TLS_CERT: cert.cert,
    GRPC_TLS_KEY: cert.key,
  });
  await waitForReady(gateway);
});

afterAll(async () => {
  await gateway?.close();
  await disposeRedis(redis);
  await rm(dir, {recursive: true, force: true});
});

describe('the gateway with GRPC_USE_TLS=true', () => {
  it('serves gRPC over TLS: a verified call works, a plaintext one is told the server speaks TLS', async (context) => {
    if (!gateway || 'skip' in cert) return context.skip();
    const port = gateway.grpc.split(':').pop()!;
    const verified = await runCli(
      [
        'call',
        '--addr',
        `localhost:${port}`,
        '--tls',
        '--cacert',
        cert.cert,
        'QueueService.JoinQueue',
        '-d',
        '{"event_id":"evt_tls"}',
      ],
      {cwd: dir},
    );
    expect(verified.code, verified.stderr).toBe(0);
    expect(JSON.parse(verified.stdout).positionHint).toBe(1);

    const plaintext = await runCli(
      [
        'call',
        '--addr',
        `127.0.0.1:${port}`,
        '--plaintext',
        'QueueService.JoinQueue',
        '-d',
        '{"event_id":"evt_tls"}',
        '--refresh',
      ],
      {cwd: dir},
    );
    expect(plaintext.code).toBe(1);
    expect(plaintext.stderr).toMatch(/probably speaks TLS/);
  });
});
