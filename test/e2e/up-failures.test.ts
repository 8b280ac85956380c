/**
 * `tacos up` when things go wrong, as a user meets it (node bin/run.js; run `npm run build`
 * first): a port of the stack already taken, a stale state left by a stack that died, a service
 * killed under a running stack (with and without --restart on-failure), `tacos up` itself killed
 * with SIGKILL, and neither a Redis nor redis-server. Each test has its own temporary project on
 * free loopback ports; what must never happen is a process or a port left behind.
 */
import {mkdir, mkdtemp, rm, symlink, writeFile} from 'node:fs/promises';
import {createServer, type Server} from 'node:net';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {execa, type ResultPromise} from 'execa';
import {afterEach, describe, expect, it} from 'vitest';
import {
  allGone,
  createProject,
  describeProcess,
  down,
  expectNothingLeft,
  heldPorts,
  isGone,
  processesIn,
  readText,
  startTimeOf,
  until,
  type Project,
} from '../helpers/up-project.js';

let project: Project | undefined;
const servers: Server[] = [];
const scratch: string[] = [];
/** Processes a test started itself (not through tacos). */
const strays: ResultPromise[] = [];

afterEach(async () => {
  await project?.dispose();
  project = undefined;
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
  for (const child of strays.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await Promise.all(scratch.splice(0).map((dir) => rm(dir, {recursive: true, force: true})));
});

/** A pid that belonged to a process that has exited. */
async function deadPid(): Promise<number> {
  const child = execa(process.execPath, ['-e', ''], {stdio: 'ignore'});
  await child;
  return child.pid!;
}

async function statusJson(p: Project): Promise<any> {
  const result = await p.run(['status', '--json']);
  return JSON.parse(result.stdout);
}

function serviceOf(report: any, name: string): any {
  return report.services.find((service: any) => service.name === name);
}

describe('a port of the stack is taken', {timeout: 60_000}, () => {
  it('up names the port, its variable and the holder, and starts nothing (foreground and --detach)', async () => {
    project = await createProject();
    const taken = project.ports.paymentGrpc;
    const holder = createServer();
    servers.push(holder);
    await new Promise<void>((resolve) => holder.listen(taken, '127.0.0.1', resolve));
    const others = project
      .stackPorts()
      .map((p) => p.port)
      .filter((port) => port !== taken);

    for (const args of [['up'], ['up', '--detach']]) {
      const result = await project.run(args);
      expect(result.code, `${args.join(' ')}: ${result.stdout}${result.stderr}`).not.toBe(0);
      expect(result.stderr).toContain(`port ${taken}`);
      expect(result.stderr).toContain('PAYMENT_GRPC_PORT');
      expect(result.stderr).toContain(`pid ${process.pid}`);
      expect(result.stderr).toMatch(/Nothing was started/);
      expect(processesIn(project.dir).map(describeProcess), `${args.join(' ')} left processes`).toEqual([]);
      expect(await heldPorts(others), `${args.join(' ')} left ports held`).toEqual([]);
      expect(project.state(), `${args.join(' ')} left a state.json`).toBeUndefined();
    }
  });
});

describe('a stale state', {timeout: 60_000}, () => {
  it('from a dead supervisor is reported as stale and removed by status, stopping a service it recorded that still runs', async () => {
    project = await createProject();
    // A service of the dead stack that still runs (it would hold its ports): the state names it
    // with its pid and start time, so it is told apart from a reused pid and stopped.
    const orphan = execa(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], {
      cwd: project.dir,
      stdio: 'ignore',
      reject: false,
    });
    strays.push(orphan);
    const orphanExited = orphan.then(() => undefined);
    await until('the orphan runs', () => (isGone(orphan.pid!) ? undefined : true), 5000);
    await mkdir(project.stateDir, {recursive: true});
    const supervisor = await deadPid();
    await writeFile(
      project.stateFile,
      JSON.stringify({
        supervisor: {pid: supervisor, startTime: '12345'},
        env: 'local',
        startedAt: new Date(Date.now() - 3_600_000).toISOString(),
        detached: true,
        services: [
          {
            name: 'redis',
            state: 'ready',
            process: {pid: await deadPid(), startTime: '12346'},
            urls: [`redis://127.0.0.1:${project.ports.redis}`],
            ports: [project.ports.redis],
            restarts: 0,
          },
          {
            name: 'payment',
            state: 'ready',
            process: {pid: orphan.pid, startTime: startTimeOf(orphan.pid!)!},
            urls: [`http://127.0.0.1:${project.ports.paymentHttp}`],
            ports: [],
            restarts: 0,
          },
        ],
      }),
    );

    const status = await project.run(['status']);
    expect(status.code).toBe(1);
    expect(status.stdout).toMatch(/No stack is running/);
    expect(status.stdout).toMatch(/stale/);
    expect(project.state(), 'the stale state is removed').toBeUndefined();
    await Promise.race([
      orphanExited,
      new Promise((_resolve, reject) =>
        setTimeout(() => reject(new Error('the stale service was not stopped within 5 s')), 5000),
      ),
    ]);

    const again = await project.run(['status']);
    expect(again.stdout).toMatch(/No stack is running\./);
    expect(again.stdout).not.toMatch(/stale/);
  });

  it('from a dead supervisor stops everything a recorded service started (its process group), not only its pid', async () => {
    project = await createProject();
    // As `up` runs a --gateway-cmd: a shell in a process group of its own, running the real server.
    const shell = execa('/bin/sh', ['-c', `"${process.execPath}" -e "setInterval(() => {}, 1000)"; exit 0`], {
      cwd: project.dir,
      stdio: 'ignore',
      detached: true,
      reject: false,
    });
    strays.push(shell);
    const group = shell.pid!;
    const inner = await until(
      'the shell runs its child',
      () => processesIn(project!.dir).find((pid) => pid !== group),
      5000,
    );
    project.track([group, inner]);
    await mkdir(project.stateDir, {recursive: true});
    await writeFile(
      project.stateFile,
      JSON.stringify({
        supervisor: {pid: await deadPid(), startTime: '12345'},
        env: 'local',
        startedAt: new Date(Date.now() - 3_600_000).toISOString(),
        detached: false,
        services: [
          {
            name: 'gateway',
            state: 'ready',
            process: {pid: group, startTime: startTimeOf(group)!},
            urls: [`http://127.0.0.1:${project.ports.server}`],
            ports: [project.ports.server],
            restarts: 0,
          },
        ],
      }),
    );
    const status = await project.run(['status']);
    expect(status.stdout).toMatch(/No stack is running.*stale/);
    await allGone([group, inner], 3000);
  });

  it('whose supervisor pid now belongs to another program is not trusted: down and up see no stack', async () => {
    project = await createProject();
    await mkdir(project.stateDir, {recursive: true});
    // This very process (alive, but not the one recorded: another start time).
    const reused = JSON.stringify({
      supervisor: {pid: process.pid, startTime: '1'},
      env: 'local',
      startedAt: new Date(Date.now() - 3_600_000).toISOString(),
      detached: true,
      services: [
        {
          name: 'gateway',
          state: 'ready',
          process: {pid: process.pid, startTime: '1'},
          urls: [`http://127.0.0.1:${project.ports.server}`],
          ports: [project.ports.server],
          restarts: 0,
        },
      ],
    });
    await writeFile(project.stateFile, reused);
    const nothing = await project.run(['down']);
    expect(nothing.code, nothing.stderr).toBe(0);
    expect(nothing.stdout).toMatch(/No stack is running\./);
    expect(project.state()).toBeUndefined();

    await writeFile(project.stateFile, reused);
    const up = await project.run(['up', '--detach']);
    expect(up.code, up.stdout + up.stderr).toBe(0);
    expect(up.stdout).not.toMatch(/already running/);
    expect(up.stdout).toMatch(/^gateway\s+ready\s+\d+/m);
    expect(project.state()!.supervisor.pid).not.toBe(process.pid);
    const status = await project.run(['status']);
    expect(status.code, status.stdout).toBe(0);
    expect(isGone(process.pid)).toBe(false);
  });
});

describe('a service killed under a running stack', {timeout: 60_000}, () => {
  it('stops the whole detached stack by default; the supervisor log names it with its last lines', async () => {
    project = await createProject();
    const started = await project.run(['up', '--detach']);
    expect(started.code, started.stderr).toBe(0);
    const report = await statusJson(project);
    const payment = serviceOf(report, 'payment').pid as number;
    const pids = project.stackProcesses();
    const supervisor = project.state()!.supervisor.pid;

    process.kill(payment, 'SIGKILL');
    await allGone([supervisor], 20_000);
    const log = await readText(path.join(project.stateDir, 'logs', 'supervisor.log'));
    expect(log).toMatch(/payment was killed by SIGKILL/);
    expect(log).toMatch(/Its last lines:\n {2}\{.*"service":"payment"/);
    expect(log, 'the supervisor ends with an error (its exit code cannot be read: it is not our child)').toMatch(
      /^Error: /m,
    );

    const status = await project.run(['status']);
    expect(status.code).toBe(1);
    expect(status.stdout).toMatch(/No stack is running/);
    await expectNothingLeft(
      project,
      pids,
      project.stackPorts().map((p) => p.port),
    );
  });

  it('stops a foreground stack, and up exits non-zero naming the service and its last lines', async () => {
    project = await createProject();
    const up = project.startUp();
    await up.waitFor(/Logs follow/);
    const pids = project.stackProcesses();
    const payment = project.state()!.services.find((service) => service.name === 'payment')!.process!.pid;

    process.kill(payment, 'SIGKILL');
    const exit = await Promise.race([
      up.exited,
      new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 20_000)),
    ]);
    expect(exit).not.toBe('timeout');
    expect(exit).toMatchObject({code: expect.any(Number)});
    expect((exit as {code: number}).code, up.stderr()).not.toBe(0);
    expect(up.stderr()).toMatch(/payment was killed by SIGKILL/);
    expect(up.stderr()).toMatch(/Its last lines:/);
    expect(up.stderr()).toMatch(/--restart on-failure/);
    await expectNothingLeft(
      project,
      pids,
      project.stackPorts().map((p) => p.port),
    );
  });

  it('comes back with --restart on-failure (a new pid, healthy again)', async () => {
    project = await createProject();
    const started = await project.run(['up', '--detach', '--restart', 'on-failure']);
    expect(started.code, started.stderr).toBe(0);
    const before = await statusJson(project);
    const payment = serviceOf(before, 'payment').pid as number;
    const oldPids = project.stackProcesses();

    process.kill(payment, 'SIGKILL');
    const after = await until(
      'payment healthy again with a new pid',
      async () => {
        const report = await statusJson(project!);
        const service = serviceOf(report, 'payment');
        return report.healthy && service?.healthy && service.pid !== payment ? report : undefined;
      },
      15_000,
      200,
    );
    expect(serviceOf(after, 'payment')).toMatchObject({state: 'ready', restarts: 1});
    for (const name of ['redis', 'reservation', 'gateway'])
      expect(serviceOf(after, name).pid, `${name} kept running`).toBe(serviceOf(before, name).pid);
    const status = await project.run(['status']);
    expect(status.code, status.stdout).toBe(0);

    const pids = [...oldPids, ...project.stackProcesses()];
    await down(project, /Stopped: gateway, payment, reservation, redis\./);
    await expectNothingLeft(
      project,
      pids,
      project.stackPorts().map((p) => p.port),
    );
  });
});

describe('tacos up killed with SIGKILL', {timeout: 60_000}, () => {
  it('leaves no service running a few seconds later', async () => {
    project = await createProject();
    const up = project.startUp();
    await up.waitFor(/Logs follow/);
    const pids = project.stackProcesses().filter((pid) => pid !== up.pid);
    expect(pids.length, pids.map(describeProcess).join('; ')).toBeGreaterThanOrEqual(5);

    up.kill();
    await up.exited;
    await allGone(pids, 5000);
    await expectNothingLeft(
      project,
      pids,
      project.stackPorts().map((p) => p.port),
    );
    const status = await project.run(['status']);
    expect(status.stdout).toMatch(/No stack is running.*stale/);
  });

  it('leaves no --gateway-cmd process running either', async () => {
    project = await createProject({grpcEnabled: false});
    await writeFile(
      path.join(project.dir, 'other-gateway.mjs'),
      `import http from 'node:http';
http.createServer((req, res) => res.end('ok')).listen(Number(process.env.SERVER_PORT ?? ${project.ports.server}), '127.0.0.1');
`,
    );
    const up = project.startUp(['--only', 'redis,gateway', '--gateway-cmd', `"${process.execPath}" other-gateway.mjs`]);
    await up.waitFor(/Logs follow/);
    const pids = project.stackProcesses().filter((pid) => pid !== up.pid);

    up.kill();
    await up.exited;
    await allGone(pids, 5000);
    await expectNothingLeft(project, pids, [project.ports.server, project.ports.redis]);
  });
});

describe('settings the gateway refuses (closed by default)', {timeout: 60_000}, () => {
  it('up names JWT_SECRET for production without a key, and nothing runs (foreground and --detach)', async () => {
    project = await createProject({extra: {SERVER_ENVIRONMENT: 'production', JWT_SECRET: '', JWT_JWKS_ENDPOINT: ''}});
    for (const args of [['up'], ['up', '--detach']]) {
      const result = await project.run(args);
      expect(result.code, `${args.join(' ')}: ${result.stdout}${result.stderr}`).toBe(1);
      expect(result.stderr).toContain('SERVER_ENVIRONMENT=production needs JWT_SECRET or JWT_JWKS_ENDPOINT');
      expect(processesIn(project.dir).map(describeProcess)).toEqual([]);
      expect(await heldPorts(project.stackPorts().map((p) => p.port))).toEqual([]);
      expect(project.state()).toBeUndefined();
    }
  });
});

describe('neither a Redis nor redis-server', {timeout: 60_000}, () => {
  it('up fails saying how to install redis-server or where to point REDIS_ADDRESS, and nothing runs', async () => {
    project = await createProject();
    // A PATH where node is, and redis-server is not.
    const bin = await mkdtemp(path.join(tmpdir(), 'tacos-path-'));
    scratch.push(bin);
    await symlink(process.execPath, path.join(bin, 'node'));
    const env = {PATH: bin};

    for (const args of [['up'], ['up', '--detach']]) {
      const result = await project.run(args, {env});
      expect(result.code, `${args.join(' ')}: ${result.stdout}${result.stderr}`).not.toBe(0);
      expect(result.stderr).toContain(`127.0.0.1:${project.ports.redis}`);
      expect(result.stderr).toMatch(/redis-server is not installed/);
      expect(result.stderr).toMatch(/apt-get install -y redis-server/);
      expect(result.stderr).toMatch(/REDIS_ADDRESS/);
      expect(processesIn(project.dir).map(describeProcess)).toEqual([]);
      expect(await heldPorts(project.stackPorts().map((p) => p.port))).toEqual([]);
      expect(project.state()).toBeUndefined();
    }

    const doctor = await project.run(['doctor'], {env});
    expect(doctor.code).toBe(1);
    expect(doctor.stdout).toMatch(/^FAIL\s+redis\s.*redis-server is not installed/m);
  });
});
