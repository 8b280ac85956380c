import {mkdtemp, rm, writeFile} from 'node:fs/promises';
import {once} from 'node:events';
import {connect, createServer, type Server} from 'node:net';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {runCli, startCli, type LongRunningCli} from '../helpers/cli.js';
import {contractClient, unaryCall} from '../helpers/grpc-client.js';
import {disposeRedis, startRedis, type RedisProcess} from '../helpers/redis.js';

let redis: RedisProcess;
let project: string;
const running: LongRunningCli[] = [];

beforeAll(async () => {
  redis = await startRedis();
  project = await mkdtemp(path.join(tmpdir(), 'tacos-project-'));
  // The env file turns gRPC on; the process environment (below) supplies ports and Redis.
  await writeFile(
    path.join(project, '.env.dev'),
    '# dev environment\nGRPC_ENABLED=true\nexport LOG_LEVEL="info"\nSERVER_PORT=1 # overridden\n',
  );
});

afterAll(async () => {
  for (const cli of running) cli.kill();
  await disposeRedis(redis);
  await rm(project, {recursive: true, force: true});
});

function serve(args: string[], env: Record<string, string> = {}): LongRunningCli {
  const cli = startCli(['serve', 'gateway', ...args], {
    cwd: project,
    env: {REDIS_ADDRESS: redis.address, SERVER_PORT: '0', GRPC_PORT: '0', ...env},
  });
  running.push(cli);
  return cli;
}

const listening = (line: Record<string, any>) => line.msg === 'gateway listening';

describe('tacos serve gateway', () => {
  it('reads the env file of --env under the process environment, serves REST and gRPC, and stops cleanly on SIGTERM', async () => {
    const gateway = serve(['--env', 'dev']);
    const ready = await gateway.waitForLine(listening);
    expect(ready.grpc).toMatch(/^grpc:\/\/127\.0\.0\.1:\d+$/);
    const http = ready.http as string;

    const join = await fetch(`${http}/api/v1/queue/join`, {
      method: 'POST',
      headers: {'content-type': 'application/json'},
      body: JSON.stringify({event_id: 'evt_e2e', user_id: 'u1'}),
    });
    expect(join.status).toBe(202);
    const {waiting_token: token} = (await join.json()) as {waiting_token: string};
    const queue = await contractClient('gateway.v1.QueueService', String(ready.grpc).replace('grpc://', ''));
    const status = await unaryCall(queue, 'GetQueueStatus', {waiting_token: token});
    expect(status.position).toBe(1);
    queue.close();

    const requestLine = await gateway.waitForLine(
      (line) => line.msg === 'http request' && line.route === '/api/v1/queue/join',
    );
    expect(requestLine).toMatchObject({level: 'info', service: 'gateway', status: 202});
    expect(requestLine.req_id).toBeTruthy();

    gateway.child.kill('SIGTERM');
    expect(await gateway.exited).toBe(0);
    expect(gateway.lines.at(-1)?.msg).toBe('gateway stopped');
    await expect(fetch(`${http}/healthz`)).rejects.toThrow();
  });

  it('stops on SIGINT too, ending open streams instead of waiting for them', async () => {
    const gateway = serve([], {GRPC_ENABLED: 'true'});
    const ready = await gateway.waitForLine(listening);
    const address = String(ready.grpc).replace('grpc://', '');
    const queue = await contractClient('gateway.v1.QueueService', address);
    const joined = await unaryCall(queue, 'JoinQueue', {event_id: 'evt_stream_stop'});
    const updates = await contractClient('gateway.v1.WebSocketService', address);
    const stream = updates.StreamQueueUpdates({waiting_token: joined.waiting_token});
    const ended = new Promise<{code: number}>((resolve) => {
      stream.on('error', (error: {code: number}) => resolve(error));
      stream.on('end', () => resolve({code: 0}));
    });
    await new Promise((resolve) => stream.once('data', resolve));

    const stoppedAt = Date.now();
    gateway.child.kill('SIGINT');
    expect(await gateway.exited).toBe(0);
    expect(Date.now() - stoppedAt).toBeLessThan(5000);
    expect((await ended).code).toBe(14); // UNAVAILABLE: reconnect elsewhere
    queue.close();
    updates.close();
  });

  it('a client that stalls cannot hold the stop past SERVER_SHUTDOWN_GRACE, and a second SIGTERM does not cut it short', async () => {
    const gateway = serve([], {SERVER_SHUTDOWN_GRACE: '1s'});
    const ready = await gateway.waitForLine(listening);
    const {port} = new URL(String(ready.http));
    // A join whose body never arrives in full: the request stays in flight.
    const stalled = connect(Number(port), '127.0.0.1');
    await once(stalled, 'connect');
    stalled.write(
      'POST /api/v1/queue/join HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"event_id":',
    );
    stalled.on('error', () => undefined).resume();
    const dropped = once(stalled, 'close');
    // Answered after the stalled request's bytes arrived: by then the gateway holds it in flight.
    expect((await fetch(`${ready.http}/healthz`)).status).toBe(200);

    gateway.child.kill('SIGTERM');
    await gateway.waitForLine((line) => line.msg === 'gateway stopping');
    gateway.child.kill('SIGTERM');
    // The stalled client would wait forever; the grace (1 s) ends it well before this test's limit.
    expect(await gateway.exited).toBe(0);
    expect(gateway.lines.at(-1)?.msg).toBe('gateway stopped');
    await dropped;
  });

  it('names a missing env file and exits 1', async () => {
    const result = await runCli(['serve', 'gateway', '--env', 'nope'], {cwd: project});
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('No env file for environment "nope"');
    expect(result.stderr).toContain('tacos env init');
  });

  it('names a bad variable and exits 1 without starting', async () => {
    const result = await runCli(['serve', 'gateway'], {
      cwd: project,
      env: {REDIS_ADDRESS: redis.address, GRPC_PORT: 'ninety'},
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('GRPC_PORT=ninety is not valid');
  });

  it.each(['0.0.0.0', '::', 'gateway.example'])(
    'refuses SERVER_HOST=%s while SERVER_ENVIRONMENT is unset, naming it, and exits 1 without listening',
    async (host) => {
      const result = await runCli(['serve', 'gateway'], {
        cwd: project,
        env: {
          REDIS_ADDRESS: redis.address,
          SERVER_HOST: host,
          SERVER_ENVIRONMENT: '',
          SERVER_PORT: '0',
          GRPC_PORT: '0',
        },
        timeoutMs: 10_000,
      });
      expect(result.code, result.stdout + result.stderr).toBe(1);
      expect(result.stderr).toContain(
        `SERVER_ENVIRONMENT is not set and SERVER_HOST=${host} is not a loopback address`,
      );
      expect(result.stderr).toMatch(/Hint: Set SERVER_ENVIRONMENT=production/);
      expect(result.stdout).not.toMatch(/gateway listening/);
    },
  );

  it('refuses production without JWT_SECRET or JWT_JWKS_ENDPOINT, naming them, and exits 1', async () => {
    const result = await runCli(['serve', 'gateway'], {
      cwd: project,
      env: {
        REDIS_ADDRESS: redis.address,
        SERVER_ENVIRONMENT: 'production',
        JWT_SECRET: '',
        JWT_JWKS_ENDPOINT: '',
        SERVER_PORT: '0',
        GRPC_PORT: '0',
      },
      timeoutMs: 10_000,
    });
    expect(result.code, result.stdout + result.stderr).toBe(1);
    expect(result.stderr).toContain('SERVER_ENVIRONMENT=production needs JWT_SECRET or JWT_JWKS_ENDPOINT');
    expect(result.stdout).not.toMatch(/gateway listening/);
  });

  it('says which port is taken, and exits 1', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as {port: number}).port;
    try {
      const result = await runCli(['serve', 'gateway'], {
        cwd: project,
        env: {REDIS_ADDRESS: redis.address, SERVER_PORT: String(port)},
      });
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(`Cannot serve HTTP on 127.0.0.1:${port}`);
      expect(result.stderr).toContain('Hint:');
    } finally {
      blocker.close();
    }
  });

  it('rejects an unknown flag as a usage error (exit 2)', async () => {
    const result = await runCli(['serve', 'gateway', '--bogus'], {cwd: project});
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/Nonexistent flag: --bogus/);
  });
});

describe('tacos --help', () => {
  it('lists the commands', async () => {
    const result = await runCli(['--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('serve');
  });
});
