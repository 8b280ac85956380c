/**
 * `tacos up`, `status`, `logs`, `down` and `doctor` as a user runs them (node bin/run.js; run
 * `npm run build` first), each test in its own temporary project whose .env.local puts every
 * service on a free loopback port and Redis on a free port (so `up` starts its own redis-server,
 * cold). What a user notices is asserted: the table, the answers of real calls, the logs, and that
 * after `down` (or Ctrl-C) no process and no listening port is left. The failure paths (port
 * conflict, stale state, a killed service, SIGKILL of up, no Redis) are in up-failures.test.ts.
 */
import {createServer, type Server} from 'node:http';
import {writeFile} from 'node:fs/promises';
import path from 'node:path';
import {Redis} from 'ioredis';
import {afterEach, describe, expect, it} from 'vitest';
import {healthStatus} from '../helpers/grpc-probes.js';
import {fetchJson} from '../helpers/http.js';
import {disposeRedis, startRedis, type RedisProcess} from '../helpers/redis.js';
import {
  createProject,
  describeProcess,
  down,
  expectNothingLeft,
  heldPorts,
  isGone,
  type Project,
} from '../helpers/up-project.js';

const DEV_TOKEN = 'Bearer tacos-dev-token';
const CONCERT = 'evt_2026_concert';

let project: Project | undefined;
let redis: RedisProcess | undefined;
const servers: Server[] = [];

afterEach(async () => {
  await project?.dispose();
  project = undefined;
  await disposeRedis(redis);
  redis = undefined;
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
});

/** A row of the status table: service, state, pid ('-' for none), URLs. */
function row(table: string, service: string): {state: string; pid: string; urls: string[]} | undefined {
  const match = new RegExp(`^${service}\\s+(\\S+)\\s+(\\S+)\\s+((?:(?:redis|http|grpc)://\\S+\\s*)+)`, 'm').exec(table);
  return match ? {state: match[1], pid: match[2], urls: match[3].trim().split(/\s+/)} : undefined;
}

describe('tacos up --detach, status, logs, down', {timeout: 60_000}, () => {
  it('starts the whole stack in the background, serves real calls, and down leaves no process and no port behind', async () => {
    project = await createProject();
    const {ports} = project;

    const started = await project.run(['up', '--detach']);
    expect(started.code, started.stderr).toBe(0);
    const table = started.stdout;
    expect(row(table, 'redis')).toMatchObject({state: 'ready', urls: [`redis://127.0.0.1:${ports.redis}`]});
    expect(row(table, 'reservation')).toMatchObject({
      state: 'ready',
      urls: [`http://127.0.0.1:${ports.reservationHttp}`, `grpc://127.0.0.1:${ports.reservationGrpc}`],
    });
    expect(row(table, 'payment')).toMatchObject({
      state: 'ready',
      urls: [`http://127.0.0.1:${ports.paymentHttp}`, `grpc://127.0.0.1:${ports.paymentGrpc}`],
    });
    expect(row(table, 'gateway')).toMatchObject({
      state: 'ready',
      urls: [`http://127.0.0.1:${ports.server}`, `grpc://127.0.0.1:${ports.grpc}`],
    });
    for (const service of ['redis', 'reservation', 'payment', 'gateway'])
      expect(row(table, service)?.pid).toMatch(/^\d+$/);
    expect(table).toContain(path.join(project.stateDir, 'logs', 'gateway.log'));

    const status = await project.run(['status']);
    expect(status.code, status.stdout + status.stderr).toBe(0);
    expect(row(status.stdout, 'gateway')?.state).toBe('ready');
    const json = await project.run(['status', '--json']);
    expect(json.code, json.stderr).toBe(0);
    const report = JSON.parse(json.stdout);
    expect(report).toMatchObject({running: true, healthy: true});
    expect(report.services.map((s: any) => s.name)).toEqual(['redis', 'reservation', 'payment', 'gateway']);
    for (const service of report.services) {
      expect(service, service.name).toMatchObject({state: 'ready', healthy: true, pid: expect.any(Number)});
      expect(isGone(service.pid), `${service.name}'s pid ${service.pid} runs`).toBe(false);
    }

    // Real calls: the queue on the gateway's REST port, gRPC health on its gRPC port, and a call
    // the gateway makes to a backend, which must be this stack's mock (the env file's backend
    // addresses are closed ports).
    const joined = await fetchJson(`http://127.0.0.1:${ports.server}/api/v1/queue/join`, {
      method: 'POST',
      body: {event_id: CONCERT, user_id: 'e2e-up'},
    });
    expect(joined.status, joined.text).toBe(202);
    expect(joined.json.waiting_token).toEqual(expect.any(String));
    expect(await healthStatus(`127.0.0.1:${ports.grpc}`)).toBe('SERVING');
    const availability = await fetchJson(`http://127.0.0.1:${ports.server}/api/v1/events/${CONCERT}/availability`, {
      headers: {authorization: DEV_TOKEN},
    });
    expect(availability.status, availability.text).toBe(200);

    const gatewayLogs = await project.run(['logs', 'gateway', '-n', '5']);
    expect(gatewayLogs.code, gatewayLogs.stderr).toBe(0);
    const gatewayLines = gatewayLogs.stdout.trim().split('\n');
    expect(gatewayLines).toHaveLength(5);
    for (const line of gatewayLines) expect(JSON.parse(line)).toMatchObject({service: 'gateway'});
    expect(await project.run(['logs', 'gateway', '-n', '200']).then((r) => r.stdout)).toContain('/api/v1/queue/join');

    // -f follows new lines until Ctrl-C.
    const follow = project.start(['logs', 'gateway', '-f', '-n', '1']);
    await follow.waitFor(/"service":"gateway"/, 10_000); // the last line: it has read the file, the next line is new
    await fetchJson(`http://127.0.0.1:${ports.server}/api/v1/queue/stats`);
    await follow.waitFor(/\/api\/v1\/queue\/stats/, 5000);
    follow.child.kill('SIGINT');
    const followed = await Promise.race([
      follow.exited,
      new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 5000)),
    ]);
    expect(followed, follow.stderr()).toEqual({code: 0, signal: null});

    const allLogs = await project.run(['logs']);
    expect(allLogs.code, allLogs.stderr).toBe(0);
    for (const service of ['redis', 'reservation', 'payment', 'gateway'])
      expect(allLogs.stdout).toMatch(new RegExp(`^${service} \\| \\S`, 'm'));
    expect(allLogs.stdout).not.toMatch(/^supervisor \|/m);

    const supervisor = project.state()!.supervisor.pid;
    const again = await project.run(['up', '--detach']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/A stack is already running/);
    expect(row(again.stdout, 'gateway')?.state).toBe('ready');
    expect(project.state()!.supervisor.pid).toBe(supervisor);

    const pids = project.stackProcesses();
    // The supervisor, four services and the redis-server that `serve redis` runs.
    expect(pids.length, pids.map(describeProcess).join('; ')).toBeGreaterThanOrEqual(6);
    await down(project, /Stopped: gateway, payment, reservation, redis\./);
    await expectNothingLeft(
      project,
      pids,
      project.stackPorts().map((p) => p.port),
    );
    expect(project.state()).toBeUndefined();

    const twice = await project.run(['down']);
    expect(twice.code, twice.stderr).toBe(0);
    expect(twice.stdout).toMatch(/No stack is running\./);
    const after = await project.run(['status']);
    expect(after.code).toBe(1);
    expect(after.stdout).toMatch(/No stack is running\./);
  });
});

describe('tacos up in the foreground', {timeout: 60_000}, () => {
  it('prints the table, then every service log with a prefix; Ctrl-C stops the services in reverse order and exits 0', async () => {
    project = await createProject();
    const {ports} = project;
    const up = project.startUp();
    await up.waitFor(/Logs follow/);
    for (const service of ['redis', 'reservation', 'payment', 'gateway'])
      expect(row(up.stdout(), service)?.state, up.stdout()).toBe('ready');

    // New lines of each service show on the terminal, prefixed with its name.
    await fetchJson(`http://127.0.0.1:${ports.server}/api/v1/queue/join`, {
      method: 'POST',
      body: {event_id: CONCERT, user_id: 'e2e-foreground'},
    });
    await fetchJson(`http://127.0.0.1:${ports.reservationHttp}/readyz`);
    await fetchJson(`http://127.0.0.1:${ports.paymentHttp}/readyz`);
    await up.waitFor(/^gateway\s+\| .*\/api\/v1\/queue\/join/m, 5000);
    await up.waitFor(/^reservation\s+\| .*readyz/m, 5000);
    await up.waitFor(/^payment\s+\| .*readyz/m, 5000);

    // When each service's process disappears, watched closely from the moment Ctrl-C is sent.
    const state = project.state()!;
    const pidOf = (name: string) => state.services.find((service) => service.name === name)!.process!.pid;
    const services = ['gateway', 'payment', 'reservation', 'redis'].map((name) => ({
      name,
      pid: pidOf(name),
      goneAt: Number.POSITIVE_INFINITY,
    }));
    const pids = project.stackProcesses();
    const started = performance.now();
    const watcher = setInterval(() => {
      for (const service of services)
        if (service.goneAt === Number.POSITIVE_INFINITY && isGone(service.pid))
          service.goneAt = performance.now() - started;
    }, 2);
    try {
      up.child.kill('SIGINT');
      const exit = await Promise.race([
        up.exited,
        new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 30_000)),
      ]);
      expect(exit, up.stderr()).toEqual({code: 0, signal: null});
    } finally {
      clearInterval(watcher);
    }
    const order = [...services].sort((a, b) => a.goneAt - b.goneAt).map((service) => service.name);
    expect(order, JSON.stringify(services)).toEqual(['gateway', 'payment', 'reservation', 'redis']);
    expect(services[0].goneAt, JSON.stringify(services)).toBeLessThan(services[3].goneAt);
    await expectNothingLeft(
      project,
      pids,
      project.stackPorts().map((p) => p.port),
    );
    expect(project.state()).toBeUndefined();
    // The service logs in the files too, up to their end.
    expect(await project.run(['logs', 'gateway', '-n', '3']).then((r) => r.stdout)).toMatch(/gateway stopped/);
  });

  it('is stopped by down from another terminal, and exits 0', async () => {
    project = await createProject({grpcEnabled: false});
    const up = project.startUp(['--only', 'redis,gateway']);
    await up.waitFor(/Logs follow/);
    const pids = project.stackProcesses();
    await down(project, /Stopped: gateway, redis\./);
    const exit = await Promise.race([
      up.exited,
      new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 10_000)),
    ]);
    expect(exit, up.stderr()).toEqual({code: 0, signal: null});
    await expectNothingLeft(project, pids, [project.ports.server, project.ports.redis]);
  });
});

describe('which services up runs', {timeout: 60_000}, () => {
  it('--only gateway,redis with GRPC_ENABLED=false starts those two only', async () => {
    project = await createProject({grpcEnabled: false});
    const {ports} = project;
    const started = await project.run(['up', '--detach', '--only', 'gateway,redis']);
    expect(started.code, started.stderr).toBe(0);
    expect(row(started.stdout, 'gateway')).toMatchObject({state: 'ready', urls: [`http://127.0.0.1:${ports.server}`]});
    expect(row(started.stdout, 'redis')?.state).toBe('ready');
    expect(started.stdout).not.toMatch(/^(reservation|payment)\s/m);

    const status = await project.run(['status', '--json']);
    expect(status.code, status.stdout).toBe(0);
    expect(JSON.parse(status.stdout).services.map((s: any) => s.name)).toEqual(['redis', 'gateway']);
    const mockPorts = [ports.reservationHttp, ports.reservationGrpc, ports.paymentHttp, ports.paymentGrpc, ports.grpc];
    expect(await heldPorts(mockPorts), 'no mock and no gRPC port listens').toEqual([]);

    const pids = project.stackProcesses();
    await down(project, /Stopped: gateway, redis\./);
    await expectNothingLeft(project, pids, [ports.server, ports.redis]);
  });

  it('--no-mocks starts Redis and the gateway, which calls the backends of the env', async () => {
    project = await createProject({grpcEnabled: false});
    const {ports} = project;
    // The env's reservation backend (HTTP, as GRPC_ENABLED=false): a server of the test that records
    // what it is asked and is unavailable.
    const asked: string[] = [];
    const backend = createServer((req, res) => {
      asked.push(`${req.method} ${req.url}`);
      req.resume();
      res
        .writeHead(503, {'content-type': 'application/json'})
        .end(JSON.stringify({error: {code: 'UNAVAILABLE', message: 'down for the test'}}));
    });
    servers.push(backend);
    await new Promise<void>((resolve) => backend.listen(ports.backendReservationHttp, '127.0.0.1', resolve));

    const started = await project.run(['up', '--detach', '--no-mocks']);
    expect(started.code, started.stderr).toBe(0);
    const status = await project.run(['status', '--json']);
    expect(JSON.parse(status.stdout).services.map((s: any) => s.name)).toEqual(['redis', 'gateway']);
    expect(
      await heldPorts([ports.reservationHttp, ports.reservationGrpc, ports.paymentHttp, ports.paymentGrpc]),
      'the mocks do not run',
    ).toEqual([]);

    const began = performance.now();
    const answer = await fetchJson(`http://127.0.0.1:${ports.server}/api/v1/events/${CONCERT}/availability`, {
      headers: {authorization: DEV_TOKEN},
    });
    expect([502, 503, 504], answer.text).toContain(answer.status);
    expect(performance.now() - began).toBeLessThan(8000);
    expect(asked.length, 'the gateway called BACKEND_RESERVATION_API_BASE_URL of the env').toBeGreaterThan(0);

    const pids = project.stackProcesses();
    await down(project, /Stopped: gateway, redis\./);
    await expectNothingLeft(project, pids, [ports.server, ports.redis]);
  });

  it('--gateway-cmd runs another gateway with the stack environment, probed on /readyz, and stops it with the stack', async () => {
    project = await createProject({grpcEnabled: false});
    const {ports} = project;
    // Another gateway build: listens on SERVER_PORT as any gateway of this project does, and shows
    // the environment it was given. Without SERVER_PORT it fails at once (not a 30 s readiness wait).
    await writeFile(
      path.join(project.dir, 'other-gateway.mjs'),
      `import http from 'node:http';
const port = process.env.SERVER_PORT;
if (!port) {
  console.error('other gateway: SERVER_PORT is not set in my environment');
  process.exit(3);
}
const seen = ['SERVER_PORT', 'REDIS_ADDRESS', 'GRPC_ENABLED', 'BACKEND_RESERVATION_GRPC_ADDRESS', 'BACKEND_RESERVATION_API_BASE_URL', 'BACKEND_PAYMENT_GRPC_ADDRESS', 'BACKEND_PAYMENT_API_BASE_URL'];
const server = http.createServer((req, res) => {
  if (req.url === '/readyz') return res.end('ok');
  if (req.url === '/env') return res.end(JSON.stringify(Object.fromEntries(seen.map((name) => [name, process.env[name]]))));
  res.statusCode = 404;
  res.end();
});
server.listen(Number(port), '127.0.0.1', () => console.log('other gateway listening on ' + port));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
`,
    );
    const started = await project.run(['up', '--detach', '--gateway-cmd', `"${process.execPath}" other-gateway.mjs`]);
    expect(started.code, started.stdout + started.stderr).toBe(0);
    expect(row(started.stdout, 'gateway')).toMatchObject({state: 'ready', urls: [`http://127.0.0.1:${ports.server}`]});

    const env = await fetchJson(`http://127.0.0.1:${ports.server}/env`);
    expect(env.json).toEqual({
      SERVER_PORT: String(ports.server),
      REDIS_ADDRESS: `127.0.0.1:${ports.redis}`,
      GRPC_ENABLED: 'false',
      // The stack's mocks, as for our gateway.
      BACKEND_RESERVATION_GRPC_ADDRESS: `127.0.0.1:${ports.reservationGrpc}`,
      BACKEND_RESERVATION_API_BASE_URL: `http://127.0.0.1:${ports.reservationHttp}`,
      BACKEND_PAYMENT_GRPC_ADDRESS: `127.0.0.1:${ports.paymentGrpc}`,
      BACKEND_PAYMENT_API_BASE_URL: `http://127.0.0.1:${ports.paymentHttp}`,
    });
    const logs = await project.run(['logs', 'gateway']);
    expect(logs.stdout).toContain(`other gateway listening on ${ports.server}`);

    const pids = project.stackProcesses();
    await down(project, /Stopped: gateway, payment, reservation, redis\./);
    await expectNothingLeft(
      project,
      pids,
      project.stackPorts({grpc: false}).map((p) => p.port),
    );
  });
});

describe('a Redis that already runs', {timeout: 60_000}, () => {
  it('is reused (no pid) and left running by down', async () => {
    redis = await startRedis();
    project = await createProject({redisAddress: redis.address});
    const started = await project.run(['up', '--detach']);
    expect(started.code, started.stderr).toBe(0);
    expect(row(started.stdout, 'redis')).toMatchObject({
      state: 'reused',
      pid: '-',
      urls: [`redis://127.0.0.1:${redis.port}`],
    });
    const status = JSON.parse((await project.run(['status', '--json'])).stdout);
    expect(status.healthy).toBe(true);
    expect(status.services[0]).toMatchObject({name: 'redis', state: 'reused', healthy: true});
    expect(status.services[0].pid).toBeUndefined();

    const pids = project.stackProcesses();
    await down(project, /Stopped: gateway, payment, reservation\./);
    await expectNothingLeft(
      project,
      pids,
      project.stackPorts({redis: false}).map((p) => p.port),
    );
    const client = new Redis({
      host: '127.0.0.1',
      port: redis.port,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    client.on('error', () => undefined);
    try {
      await client.connect();
      expect(await client.ping()).toBe('PONG');
    } finally {
      client.disconnect();
    }
  });
});

describe('tacos doctor', {timeout: 60_000}, () => {
  it('passes in a healthy project, and fails naming the env file and the variable of a bad value', async () => {
    project = await createProject();
    const healthy = await project.run(['doctor']);
    expect(healthy.code, healthy.stdout + healthy.stderr).toBe(0);
    for (const check of ['node', '.env.local', 'redis', 'ports', 'proto'])
      expect(healthy.stdout).toMatch(new RegExp(`^pass\\s+${check.replace('.', '\\.')}\\s`, 'm'));
    expect(healthy.stdout).not.toMatch(/FAIL/);

    await writeFile(path.join(project.dir, '.env.dev'), 'GRPC_ENABLED=maybe\n');
    const bad = await project.run(['doctor']);
    expect(bad.code, bad.stdout + bad.stderr).toBe(1);
    expect(bad.stdout).toMatch(/^FAIL\s+\.env\.dev\s.*GRPC_ENABLED/m);
    expect(bad.stdout).toMatch(/fix: .*\.env\.dev/);
    expect(bad.stdout).toMatch(/^pass\s+\.env\.local\s/m);
  });

  it('fails on a port of the stack that is taken, naming it', async () => {
    project = await createProject();
    const holder = createServer();
    servers.push(holder);
    await new Promise<void>((resolve) => holder.listen(project!.ports.reservationHttp, '127.0.0.1', resolve));
    const result = await project.run(['doctor']);
    expect(result.code, result.stdout).toBe(1);
    expect(result.stdout).toMatch(
      new RegExp(`^FAIL\\s+ports\\s.*${project.ports.reservationHttp}.*RESERVATION_HTTP_PORT`, 'm'),
    );
  });
});
