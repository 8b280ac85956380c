/**
 * The stack file (tacos.stack.yaml) as a user runs it: `tacos up` (node bin/run.js; `npm run build`
 * first) in a temporary project whose .env.local puts the built-ins on free ports, with user
 * services that are small node scripts listening on free loopback ports. Asserted: the order of
 * start (a service that finds what it depends on not answering exits, failing `up`), each kind of
 * readiness check, a user service in place of the payment mock, status/logs/down, no orphan after
 * SIGKILL of `up`, and bad files refused with their line and nothing started. Also: `tacos up` with
 * no env file serves gRPC, and `tacos call` says when the running stack has gRPC off.
 */
import {existsSync} from 'node:fs';
import {rm, writeFile} from 'node:fs/promises';
import path from 'node:path';
import {afterEach, describe, expect, it} from 'vitest';
import {BIN} from '../helpers/cli.js';
import {
  allGone,
  createProject,
  descendants,
  describeProcess,
  freePorts,
  heldPorts,
  processesIn,
  type Project,
} from '../helpers/up-project.js';

let project: Project | undefined;

afterEach(async () => {
  await project?.dispose();
  project = undefined;
});

/** An HTTP server on the port, answering 200; with `needs`, it first checks that port answers and exits 1 when not (started too early). */
const HTTP_SERVICE = `
const [port, needs] = process.argv.slice(2).map(Number);
const start = () => require('node:http').createServer((_q, s) => s.end('ok')).listen(port, '127.0.0.1', () => console.log('listening on ' + port));
if (!needs) start();
else require('node:net').connect(needs, '127.0.0.1').on('connect', function () { this.destroy(); start(); }).on('error', () => { console.log('started before ' + needs + ' answered'); process.exit(1); });
`;
/** Prints its readiness line after a while, then stays. */
const LOG_SERVICE = `setTimeout(() => console.log('worker ready in 42 ms'), 300); setInterval(() => {}, 1000);`;

async function writeScripts(p: Project): Promise<void> {
  await writeFile(path.join(p.dir, 'http-service.cjs'), HTTP_SERVICE);
  await writeFile(path.join(p.dir, 'log-service.cjs'), LOG_SERVICE);
}

async function stackFile(p: Project, text: string, name = 'tacos.stack.yaml'): Promise<void> {
  await writeFile(path.join(p.dir, name), text);
}

/** The pid of a service in the state, and every process below it. */
function treeOf(p: Project, service: string): number[] {
  const pid = p.state()?.services.find((entry) => entry.name === service)?.process?.pid;
  expect(pid, `${service} has a pid in the state`).toBeTypeOf('number');
  return [pid!, ...descendants(pid!)];
}

describe('tacos up with a stack file', {timeout: 120_000}, () => {
  it('starts services in depends_on order on each kind of readiness, replaces the payment mock, and status, logs and down cover them', async () => {
    project = await createProject();
    const [webPort, apiPort] = await freePorts(2);
    const {ports} = project;
    await writeScripts(project);
    await stackFile(
      project,
      `services:
  api:
    command: node http-service.cjs ${apiPort} ${ports.server}
    depends_on: [gateway]
    ready: {tcp: 127.0.0.1:${apiPort}}
    ports: [${apiPort}]
  web:
    command: [node, http-service.cjs, "${webPort}", "${apiPort}"]
    env: [GREETING=hello]
    depends_on:
      api: {condition: service_healthy}
    ready: {http: "http://127.0.0.1:${webPort}/", timeout: 20s}
  worker:
    command: node log-service.cjs
    depends_on: [web]
    ready: {log: "ready in \\\\d+ ms"}
  payment:
    command: [node, ${BIN}, serve, payment]
    ready: {grpc: 127.0.0.1:${ports.paymentGrpc}}
`,
    );

    const started = await project.run(['up', '--detach'], {timeoutMs: 90_000});
    expect(started.code, started.stdout + started.stderr).toBe(0);

    const status = await project.run(['status']);
    for (const service of ['api', 'web', 'worker', 'payment', 'gateway'])
      expect(status.stdout).toMatch(new RegExp(`^${service}\\s+ready\\s+\\d+`, 'm'));
    expect(status.stdout).toContain(`http://127.0.0.1:${webPort}/`);
    // The payment service is the stack file's command, under its watcher, not the built-in mock.
    expect(describeProcess(treeOf(project, 'payment')[0])).toContain(`serve command --run node ${BIN} serve payment`);
    expect(await fetch(`http://127.0.0.1:${webPort}/`).then((response) => response.text())).toBe('ok');

    const logs = await project.run(['logs', 'worker']);
    expect(logs.stdout).toContain('worker ready in 42 ms');
    const webLogs = await project.run(['logs', 'web']);
    expect(webLogs.stdout).toContain(`listening on ${webPort}`);

    const pids = ['api', 'web', 'worker', 'payment'].flatMap((service) => treeOf(project!, service));
    const stopped = await project.run(['down'], {timeoutMs: 60_000});
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(stopped.stdout).toMatch(/worker/);
    await allGone(pids, 15_000);
    expect(await heldPorts([webPort, apiPort, ports.paymentGrpc, ports.paymentHttp])).toEqual([]);
    const again = await project.run(['down']);
    expect(again.code, again.stderr).toBe(0);
  });

  it('leaves no user service running when `tacos up` is killed with SIGKILL', async () => {
    project = await createProject();
    const [webPort] = await freePorts(1);
    await writeScripts(project);
    await stackFile(
      project,
      `services:\n  web:\n    command: node http-service.cjs ${webPort}\n    ports: [${webPort}]\n`,
      'tacos.stack.yml',
    );
    const up = project.startUp();
    await up.waitFor(/Logs follow/, 60_000);
    const pids = treeOf(project, 'web');
    expect(pids.length).toBeGreaterThan(1);
    up.child.kill('SIGKILL');
    await allGone(pids, 20_000);
    expect(await heldPorts([webPort])).toEqual([]);
  });

  it.each([
    [
      'a YAML syntax error',
      'services:\n  web:\n    command: node x.js\n   ports: [3000]\n',
      /tacos\.stack\.yaml:4: not valid YAML: All mapping items must start at the same column\./,
    ],
    [
      'an unknown depends_on',
      'services:\n  web:\n    command: node x.js\n  api:\n    command: node y.js\n    depends_on: [databse]\n',
      /tacos\.stack\.yaml:4: api depends on "databse", which is no service/,
    ],
    [
      'a cycle',
      'services:\n  web:\n    command: node x.js\n    depends_on: [api]\n  api:\n    command: node y.js\n    depends_on: [web]\n',
      /tacos\.stack\.yaml:2: depends_on makes a cycle: web -> api -> web/,
    ],
    [
      'an unknown key',
      'services:\n  web:\n    command: node x.js\n    restart: always\n',
      /tacos\.stack\.yaml:4: unknown key "restart" in service web/,
    ],
    [
      'a missing command',
      'services:\n  web:\n    cwd: ../web\n',
      /tacos\.stack\.yaml:2: service web has no `command:`/,
    ],
    [
      'a bad ready kind',
      'services:\n  web:\n    command: node x.js\n    ready: {udp: 127.0.0.1:3000}\n',
      /tacos\.stack\.yaml:4: web\.ready: "udp" is not a kind of readiness check/,
    ],
  ])('refuses %s naming the line, with nothing started; doctor says the same', async (_what, text, message) => {
    project = await createProject();
    await stackFile(project, text);
    const result = await project.run(['up']);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(message);
    expect(existsSync(project.stateFile)).toBe(false);
    expect(processesIn(project.dir)).toEqual([]);
    expect(await heldPorts(project.stackPorts().map((entry) => entry.port))).toEqual([]);

    const doctor = await project.run(['doctor'], {timeoutMs: 60_000});
    expect(doctor.code).toBe(1);
    expect(doctor.stdout).toMatch(/FAIL\s+stack file/);
    expect(doctor.stdout).toMatch(message);
  });

  it('doctor passes a good stack file and names its services', async () => {
    project = await createProject();
    await stackFile(
      project,
      'services:\n  web:\n    command: npm run dev\n    cwd: ../reservation-web\n    depends_on: [gateway]\n',
    );
    const doctor = await project.run(['doctor'], {timeoutMs: 60_000});
    expect(doctor.stdout).toMatch(/pass\s+stack file\s+tacos\.stack\.yaml: web/);
  });
});

describe('gRPC out of the box', {timeout: 120_000}, () => {
  it('`tacos up` with no env file serves gRPC: `tacos call QueueService.JoinQueue` works', async () => {
    project = await createProject();
    const {ports} = project;
    await rm(path.join(project.dir, '.env.local'));
    // No env file: the ports come from the process environment, GRPC_ENABLED from the local defaults.
    const env = {
      SERVER_HOST: '127.0.0.1',
      SERVER_PORT: String(ports.server),
      GRPC_PORT: String(ports.grpc),
      RESERVATION_HTTP_PORT: String(ports.reservationHttp),
      RESERVATION_GRPC_PORT: String(ports.reservationGrpc),
      PAYMENT_HTTP_PORT: String(ports.paymentHttp),
      PAYMENT_GRPC_PORT: String(ports.paymentGrpc),
      REDIS_ADDRESS: `127.0.0.1:${ports.redis}`,
    };
    const started = await project.run(['up', '--detach'], {env, timeoutMs: 90_000});
    expect(started.code, started.stdout + started.stderr).toBe(0);
    const call = await project.run(['call', 'QueueService.JoinQueue', '-d', '{"event_id":"evt_2025_1001"}'], {env});
    expect(call.code, call.stderr).toBe(0);
    expect(call.stdout).toMatch(/"waitingToken": "\S+"/);
  });

  it('`tacos call` says the running stack has gRPC off and how to turn it on', async () => {
    project = await createProject({grpcEnabled: false});
    const started = await project.run(['up', '--detach'], {timeoutMs: 90_000});
    expect(started.code, started.stdout + started.stderr).toBe(0);
    const call = await project.run(['call', 'QueueService.JoinQueue', '-d', '{"event_id":"evt_2025_1001"}']);
    expect(call.code).not.toBe(0);
    expect(call.stderr).toContain('the stack `tacos up` runs (env local) has gRPC off');
    expect(call.stderr).toContain('tacos env switch grpc --env local');
    expect(call.stderr).toContain('GRPC_ENABLED=true in .env.local');
  });
});
