/**
 * `tacos call`, `list` and `describe` (node bin/run.js) against our own gateway: a real
 * redis-server, the gateway in this process with gRPC on, its reflection (v1 and v1alpha) and its
 * error details (common.v1.Error, google.rpc.ErrorInfo, ...).
 */
import {mkdtemp, readdir, readFile, rm, stat, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {runCli, type CliResult} from '../helpers/cli.js';
import {jsonObjects} from '../helpers/call-servers.js';
import {startTestGateway, waitForReady, type TestGateway} from '../helpers/gateway.js';
import {disposeRedis, startRedis, type RedisProcess} from '../helpers/redis.js';

let redis: RedisProcess | undefined;
let gateway: TestGateway | undefined;
let project: string;
const gw = () => gateway as TestGateway;

beforeAll(async () => {
  project = await mkdtemp(path.join(tmpdir(), 'tacos-call-gateway-'));
  redis = await startRedis();
  gateway = await startTestGateway({
    REDIS_ADDRESS: redis.address,
    SERVER_ENVIRONMENT: 'development',
    GRPC_ENABLED: 'true',
  });
  await waitForReady(gateway);
});

afterAll(async () => {
  await gateway?.close();
  await gateway?.close();
  await disposeRedis(redis);
  await rm(project, {recursive: true, force: true});
});

function tacos(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  // The state dir is <cwd>/.tacos anyway; named here so a TACOS_STATE_DIR of the caller's environment cannot move it.
  return runCli(args, {cwd: project, timeoutMs: 20_000, env: {TACOS_STATE_DIR: path.join(project, '.tacos'), ...env}});
}

describe('tacos call against the gateway', () => {
  it('JoinQueue by Service.Method puts the first user at position 1; GetQueueStatus by bare name finds the token', async () => {
    const joined = await tacos(['call', '--addr', gw().grpc, 'QueueService.JoinQueue', '-d', '{"event_id":"evt_1"}']);
    expect(joined.stderr).toBe('');
    expect(joined.code).toBe(0);
    const [join] = jsonObjects(joined.stdout);
    expect(join.positionHint).toBe(1);
    expect(join.status).toMatch(/^QUEUE_STATUS_/);
    expect(join.expiresAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);

    const status = await tacos([
      'call',
      '--addr',
      gw().grpc,
      'GetQueueStatus',
      '-d',
      JSON.stringify({waiting_token: join.waitingToken}),
    ]);
    expect(status.code).toBe(0);
    expect(jsonObjects(status.stdout)[0].position).toBe(1);
  });

  it('NOT_FOUND: exit 69, the ERROR block decodes common.v1.Error and google.rpc.ErrorInfo (reason TOKEN_NOT_FOUND)', async () => {
    const result = await tacos([
      'call',
      '--addr',
      gw().grpc,
      'gateway.v1.QueueService/GetQueueStatus',
      '-d',
      '{"waiting_token":"garbage"}',
    ]);
    expect(result.code).toBe(64 + 5);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/Code: (NotFound|NOT_FOUND) \(5\)/);
    expect(result.stderr).toContain('type.googleapis.com/common.v1.Error');
    expect(result.stderr).toContain('type.googleapis.com/google.rpc.ErrorInfo');
    expect(result.stderr).toMatch(/"reason": "TOKEN_NOT_FOUND"/);
    expect(result.stderr).toMatch(/"code": "ERROR_CODE_/);

    const json = await tacos([
      'call',
      '--addr',
      gw().grpc,
      'GetQueueStatus',
      '-d',
      '{"waiting_token":"garbage"}',
      '--json',
    ]);
    expect(json.code).toBe(69);
    const {status} = JSON.parse(json.stdout);
    expect(status.code).toBe(5);
    expect(status.details.find((detail: any) => detail['@type'].endsWith('google.rpc.ErrorInfo'))).toMatchObject({
      reason: 'TOKEN_NOT_FOUND',
    });
  });

  it('INVALID_ARGUMENT: exit 67 with a BadRequest naming event_id', async () => {
    const result = await tacos([
      'call',
      '--addr',
      gw().grpc,
      'QueueService.JoinQueue',
      '-d',
      '{"event_id":"evt with spaces"}',
    ]);
    expect(result.code).toBe(67);
    expect(result.stderr).toContain('google.rpc.BadRequest');
    expect(result.stderr).toMatch(/"field": "event_id"/);
  });

  it('--example prints JSON that parses and names the request fields', async () => {
    const result = await tacos(['call', '--addr', gw().grpc, 'QueueService.JoinQueue', '--example']);
    expect(result.code).toBe(0);
    const example = JSON.parse(result.stdout);
    expect(example).toHaveProperty('eventId');
    expect(example).toHaveProperty('metadata');
  });

  it('the schema is cached under <cwd>/.tacos/cache/reflection; --refresh rewrites it', async () => {
    const dir = path.join(project, '.tacos', 'cache', 'reflection');
    await rm(dir, {recursive: true, force: true});
    const first = await tacos(['call', '--addr', gw().grpc, 'QueueService.GetQueueStats', '-d', '{}']);
    expect(first.code).toBe(0);
    const [file] = await readdir(dir);
    expect(file).toMatch(/\.json$/);
    const cached = JSON.parse(await readFile(path.join(dir, file), 'utf8'));
    expect(cached.services).toContain('gateway.v1.QueueService');
    const before = (await stat(path.join(dir, file))).mtimeMs;

    // The second call reads the cache: reflection would rewrite the file, and it is left as it was.
    const second = await tacos(['call', '--addr', gw().grpc, 'QueueService.GetQueueStats', '-d', '{}']);
    expect(second.code).toBe(0);
    expect((await stat(path.join(dir, file))).mtimeMs, 'the second call did not rewrite the cache').toBe(before);
    const refreshed = await tacos(['call', '--addr', gw().grpc, 'QueueService.GetQueueStats', '-d', '{}', '--refresh']);
    expect(refreshed.code).toBe(0);
    expect((await stat(path.join(dir, file))).mtimeMs).toBeGreaterThan(before);
    expect(JSON.parse(await readFile(path.join(dir, file), 'utf8')).services).toContain('gateway.v1.QueueService');
  });
});

describe('tacos list and describe against the gateway', () => {
  it('list shows gateway.v1.QueueService; list QueueService shows its methods with their kinds', async () => {
    const services = await tacos(['list', '--addr', gw().grpc]);
    expect(services.code).toBe(0);
    const lines = services.stdout.trim().split('\n');
    expect(lines).toContain('gateway.v1.QueueService');
    expect(lines.some((line) => line.startsWith('grpc.reflection.'))).toBe(false);

    const methods = await tacos(['list', '--addr', gw().grpc, 'QueueService']);
    expect(methods.code).toBe(0);
    expect(methods.stdout).toMatch(/^gateway\.v1\.QueueService\.JoinQueue\s+unary$/m);
    expect(methods.stdout).toMatch(/^gateway\.v1\.QueueService\.GetQueueStats\s+unary$/m);

    const streaming = await tacos(['list', '--addr', gw().grpc, 'gateway.v1.WebSocketService']);
    expect(streaming.stdout).toMatch(/server streaming/);
  });

  it('describe gateway.v1.JoinQueueRequest shows proto source with the comments', async () => {
    const result = await tacos(['describe', '--addr', gw().grpc, 'gateway.v1.JoinQueueRequest']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('// Input of JoinQueue.');
    expect(result.stdout).toContain('message JoinQueueRequest {');
    expect(result.stdout).toContain('// Event whose waiting room to join.');
    expect(result.stdout).toMatch(/string event_id = 1;/);
  });

  it('without --addr, the target is the environment gateway (127.0.0.1:GRPC_PORT of .env.local)', async (context) => {
    // The process environment outranks env files: a GRPC_PORT there would win over .env.local.
    if (process.env.GRPC_PORT) return context.skip();
    await writeFile(path.join(project, '.env.local'), `GRPC_PORT=${gw().grpcPort}\n`);
    try {
      const result = await tacos(['list']);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(result.stdout).toContain('gateway.v1.QueueService');
    } finally {
      await rm(path.join(project, '.env.local'), {force: true});
    }
  });
});
