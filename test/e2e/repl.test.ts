/**
 * `tacos repl` as a user drives it: node bin/run.js in a real pseudo-terminal (tmux), keys typed,
 * what the terminal shows read back. Against the AllTypes server with reflection v1alpha only
 * (it records each call with its metadata) and against our gateway (real redis-server).
 */
import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {execa} from 'execa';
import {afterAll, afterEach, beforeAll, describe, expect, it} from 'vitest';
import {startAllTypesServer, type TestServer} from '../helpers/call-servers.js';
import {BIN} from '../helpers/cli.js';
import type {TestGateway} from '../helpers/gateway.js';
import {startPty, tmuxMissing, type Pty} from '../helpers/pty.js';
import {disposeRedis, startRedis, type RedisProcess} from '../helpers/redis.js';
import {startStackGateway} from '../helpers/stack.js';
import {ALL_CHECKS_REQUIRED, missingToolError} from '../helpers/required-checks.js';

const missing = tmuxMissing();
if (missing && ALL_CHECKS_REQUIRED) throw missingToolError(missing);
if (missing) console.warn(`tacos repl e2e tests skipped: ${missing}`);

/** Each wait for the terminal (a prompt, a line of output) is bounded by this. */
const WAIT_MS = 10_000;

let project: string;
const sessions: Pty[] = [];

beforeAll(async () => {
  project = await mkdtemp(path.join(tmpdir(), 'tacos-repl-e2e-'));
});

afterEach(async () => {
  for (const session of sessions.splice(0)) await session.stop();
});

afterAll(async () => {
  await rm(project, {recursive: true, force: true});
});

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** A row of the boxed tables `show` prints (as Evans's): `| cell | cell |`. */
const tableRow = (...cells: string[]) => new RegExp(`\\|\\s*${cells.map(escape).join('\\s*\\|\\s*')}\\s*\\|`);

/** A REPL in a terminal, with the prompt the user sees after each command. */
class Repl {
  constructor(
    readonly pty: Pty,
    readonly address: string,
  ) {}

  /** `<package>.<Service>@<addr>>`, `<package>@<addr>>` or `<addr>>`. */
  prompt(selection = ''): string {
    return selection ? `${selection}@${this.address}>` : `${this.address}>`;
  }

  /** The prompt at the end of the screen; with `from` (the line a command was typed on), a new one after it. */
  waitForPrompt(selection = '', from?: number): Promise<string> {
    const prompt = escape(this.prompt(selection));
    const pattern = from === undefined ? new RegExp(`(^|\\n)${prompt}$`) : new RegExp(`\\n${prompt}$`);
    return this.pty.waitFor(pattern, {from, timeoutMs: WAIT_MS});
  }

  /** Types a line, waits until the terminal shows it, presses Enter; returns the number of the line it is on. */
  async enter(line: string): Promise<number> {
    await this.pty.type(line);
    await this.pty.waitFor((screen) => screen.endsWith(line), {timeoutMs: WAIT_MS});
    return this.submit();
  }

  /** Presses Enter on the line shown; returns the number of that line. */
  async submit(): Promise<number> {
    const at = (await this.pty.lineCount()) - 1;
    await this.pty.press('Enter');
    return at;
  }

  /** Runs a command line; returns what it printed (the lines between it and the next prompt, with `selection`). */
  async run(line: string, selection: string): Promise<string> {
    const screen = await this.waitForPrompt(selection, await this.enter(line));
    return screen.split('\n').slice(1, -1).join('\n');
  }

  /**
   * Answers the field prompts of a call entered on line `from` (label → answer; every other prompt gets
   * Enter, its default) until the REPL's prompt is back; returns everything shown since `from`.
   */
  async answerPrompts(answers: Record<string, string>, selection: string, from: number): Promise<string> {
    const done = new RegExp(`\\n${escape(this.prompt(selection))}$`);
    // A question waiting is a line `? label ...`; once answered, it reads `✔ label ... => answer`.
    const question = (screen: string) => screen.split('\n').findLast((line) => line.startsWith('? '));
    const answered = (screen: string) => screen.split('\n').filter((line) => line.startsWith('✔ ')).length;
    for (let asked = 0; asked < 100; asked++) {
      const screen = await this.pty.waitFor((text) => done.test(text) || question(text) !== undefined, {
        from,
        timeoutMs: WAIT_MS,
      });
      if (done.test(screen)) return screen;
      const label = (question(screen) as string).slice(2).split(' ')[0];
      const answeredBefore = answered(screen);
      if (label in answers) await this.pty.type(answers[label]);
      await this.pty.press('Enter');
      await this.pty.waitFor((text) => done.test(text) || answered(text) > answeredBefore, {from, timeoutMs: WAIT_MS});
    }
    throw new Error(`more than 100 prompts:\n${await this.pty.screen()}`);
  }
}

/** `tacos repl ARGS` in the project dir (its state dir .tacos/ holds the schema cache and the history). */
async function startRepl(address: string, args: string[] = []): Promise<Repl> {
  const pty = await startPty([process.execPath, BIN, 'repl', '--addr', address, ...args], {
    cwd: project,
    // The state dir is <cwd>/.tacos anyway; named so that a TACOS_STATE_DIR of the caller's environment cannot move it.
    env: {TACOS_STATE_DIR: path.join(project, '.tacos')},
  });
  sessions.push(pty);
  return new Repl(pty, address);
}

/** Presses Ctrl-D at the prompt; the exit code the REPL then ends with. */
async function endWithCtrlD(repl: Repl): Promise<number> {
  await repl.pty.press('C-d');
  return repl.pty.exitCode(WAIT_MS);
}

describe.skipIf(missing)('tacos repl against a server with reflection v1alpha only', () => {
  let server: TestServer;
  const ALL_TYPES = 'tacostest.v1.AllTypes';
  const lastCall = () => server.calls.at(-1);

  beforeAll(async () => {
    server = await startAllTypesServer({reflection: 'v1alpha'});
  });
  afterAll(async () => {
    await server?.stop();
    await server?.stop();
  });

  /** A REPL with AllTypes selected by `service`, as a user types it (the one package is selected at start). */
  async function atAllTypes(): Promise<Repl> {
    const repl = await startRepl(server.address);
    // One package on the server (reflection itself aside): selected at start, as Evans does.
    await repl.waitForPrompt('tacostest.v1');
    await repl.run('service AllTypes', ALL_TYPES);
    return repl;
  }

  it('selects the one package at start; `package` and `service` change the prompt; --package/--service select at start', async () => {
    const repl = await startRepl(server.address);
    await repl.waitForPrompt('tacostest.v1');
    await repl.run('service Mirror', 'tacostest.v1.Mirror');
    await repl.run('service AllTypes', ALL_TYPES);
    await repl.run('package tacostest.v1', 'tacostest.v1');
    expect(await endWithCtrlD(repl)).toBe(0);

    const selected = await startRepl(server.address, ['--package', 'tacostest.v1', '--service', 'Mirror']);
    await selected.waitForPrompt('tacostest.v1.Mirror');
    await selected.run('call Unary -d \'{"title":"mirrored"}\'', 'tacostest.v1.Mirror');
    expect(lastCall()?.method).toBe('Mirror/Unary');
  });

  it('call -d prints the answer; --repeat sends the same request again', async () => {
    const repl = await atAllTypes();
    const output = await repl.run('call Unary -d \'{"title":"with -d","f_int64":"9007199254740993"}\'', ALL_TYPES);
    expect(output).toContain('"title": "with -d"');
    expect(output).toContain('"fInt64": "9007199254740993"');
    expect(lastCall()).toMatchObject({method: 'AllTypes/Unary'});
    expect(lastCall()?.requests[0].fInt64).toBe(9007199254740993n);

    const callsBefore = server.calls.length;
    const repeated = await repl.run('call Unary --repeat', ALL_TYPES);
    expect(repeated).toContain('"title": "with -d"');
    expect(server.calls.length).toBe(callsBefore + 1);
    expect(lastCall()?.requests[0].title).toBe('with -d');
  });

  it('call without -d asks field by field; the answers reach the server', {timeout: 60_000}, async () => {
    const repl = await atAllTypes();
    const from = await repl.enter('call Unary');
    const screen = await repl.answerPrompts(
      {title: 'typed at the prompt', f_int64: '9007199254740993', 'repeated_string[0]': 'one'},
      ALL_TYPES,
      from,
    );
    expect(screen).toMatch(/title \(TYPE_STRING\) => typed at the prompt/);
    expect(screen).toContain('"title": "typed at the prompt"');
    expect(lastCall()?.requests[0]).toMatchObject({
      title: 'typed at the prompt',
      fInt64: 9007199254740993n,
      repeatedString: ['one'],
    });
  });

  it('a server stream prints messages as they arrive; Ctrl-C stops it and the REPL goes on', async () => {
    const repl = await atAllTypes();
    // The server waits 3 s between messages: the first is shown long before the stream would end.
    await repl.run('header x-gap-ms=3000', ALL_TYPES);
    const from = await repl.enter('call ServerStream -d \'{"title":"streamed"}\'');
    await repl.pty.waitFor(/"index": 1/, {from, timeoutMs: WAIT_MS});
    await repl.pty.press('C-c');
    const screen = await repl.waitForPrompt(ALL_TYPES, from);
    expect(screen).toContain('Cancelled.');
    expect(screen).not.toContain('"index": 2');

    await repl.run('header -r x-gap-ms', ALL_TYPES);
    const next = await repl.run('call Unary -d \'{"title":"after the stream"}\'', ALL_TYPES);
    expect(next).toContain('"title": "after the stream"');
    expect(await endWithCtrlD(repl)).toBe(0);
  });

  it('`header k=v` is sent with every call and `show header` lists it; `header -r` stops it', async () => {
    const repl = await atAllTypes();
    await repl.run('header x-team=blue x-run=7', ALL_TYPES);
    const headers = await repl.run('show header', ALL_TYPES);
    expect(headers).toMatch(tableRow('x-team', 'blue'));
    expect(headers).toMatch(tableRow('x-run', '7'));

    const output = await repl.run("call Unary -d '{}'", ALL_TYPES);
    expect(output).toContain('"x-team": "blue"');
    expect(lastCall()?.metadata).toMatchObject({'x-team': 'blue', 'x-run': '7'});

    await repl.run('header -r x-team', ALL_TYPES);
    expect(await repl.run('show header', ALL_TYPES)).not.toContain('x-team');
    await repl.run("call Unary -d '{}'", ALL_TYPES);
    expect(lastCall()?.metadata['x-team']).toBeUndefined();
    expect(lastCall()?.metadata['x-run']).toBe('7');
  });

  it('desc and each show: package, service, message, rpc', async () => {
    const repl = await atAllTypes();
    const message = await repl.run('desc AllTypesMessage', ALL_TYPES);
    expect(message).toContain('message AllTypesMessage {');
    expect(message).toMatch(/optional int32 maybe = 25;/);
    expect(await repl.run('desc tacostest.v1.Color', ALL_TYPES)).toContain('COLOR_GREEN = 2;');

    expect(await repl.run('show package', ALL_TYPES)).toContain('tacostest.v1');
    const services = await repl.run('show service', ALL_TYPES);
    expect(services).toContain('AllTypes');
    expect(services).toContain('Mirror');
    const messages = await repl.run('show message', ALL_TYPES);
    for (const name of ['AllTypesMessage', 'Echo', 'EchoMany', 'Nested']) expect(messages).toContain(name);
    const rpcs = await repl.run('show rpc', ALL_TYPES);
    for (const name of ['Unary', 'ServerStream', 'ClientStream', 'Bidi', 'Fail']) expect(rpcs).toContain(name);
  });

  it('Tab completes a method name', async () => {
    const repl = await atAllTypes();
    await repl.pty.type('call Un');
    await repl.pty.press('Tab');
    await repl.pty.waitFor((screen) => screen.endsWith(`${repl.prompt(ALL_TYPES)} call Unary`), {timeoutMs: WAIT_MS});
    expect(await repl.run(' -d \'{"title":"completed"}\'', ALL_TYPES)).toContain('"title": "completed"');
    expect(lastCall()?.requests[0].title).toBe('completed');
  });

  it('Ctrl-C at the prompt clears the line; Ctrl-C in the field prompts cancels that call only', async () => {
    const repl = await atAllTypes();
    const callsBefore = server.calls.length;
    const dropped = 'call Unary -d {} this line is dropped';
    await repl.pty.type(dropped);
    await repl.pty.waitFor((screen) => screen.endsWith(dropped), {timeoutMs: WAIT_MS});
    const typedAt = (await repl.pty.lineCount()) - 1;
    await repl.pty.press('C-c');
    // A new, empty prompt under the line.
    await repl.waitForPrompt(ALL_TYPES, typedAt);

    const from = await repl.enter('call Unary');
    await repl.pty.waitFor(/\n\? title \(TYPE_STRING\) =>/, {from, timeoutMs: WAIT_MS});
    await repl.pty.press('C-c');
    expect(await repl.waitForPrompt(ALL_TYPES, from)).toContain('Cancelled.');
    expect(server.calls.length, 'neither line made a call').toBe(callsBefore);
    expect(await repl.run('call Unary -d \'{"title":"after the cancel"}\'', ALL_TYPES)).toContain('after the cancel');
  });

  it("export prints the last call as a tacos call command line (and grpcurl's) that runs as printed", async () => {
    const repl = await atAllTypes();
    await repl.run('header x-team=blue', ALL_TYPES);
    await repl.run('call Unary -d \'{"title":"it\\u0027s exported"}\'', ALL_TYPES);
    const exported = await repl.run('export', ALL_TYPES);
    expect(exported).toMatch(/^tacos call /);
    const grpcurl = await repl.run('export --grpcurl', ALL_TYPES);
    expect(grpcurl).toContain(`-H 'x-team: blue'`);
    expect(grpcurl).toContain(`${server.address} tacostest.v1.AllTypes/Unary`);

    // As a user pastes it into a shell where tacos is this checkout's bin/run.js.
    const callsBefore = server.calls.length;
    const shell = await execa('sh', ['-c', `tacos() { "${process.execPath}" "${BIN}" "$@"; }\n${exported}`], {
      cwd: project,
      timeout: 20_000,
      reject: false,
    });
    expect(shell.stderr).toBe('');
    expect(shell.exitCode).toBe(0);
    expect(server.calls.length).toBe(callsBefore + 1);
    expect(lastCall()?.requests[0].title).toBe("it's exported");
    expect(lastCall()?.metadata['x-team']).toBe('blue');
  });

  it('errors leave the REPL running: a bad -d, a FAILED call, an unknown method', async () => {
    const repl = await atAllTypes();
    const callsBefore = server.calls.length;
    expect(await repl.run("call Unary -d '{not json'", ALL_TYPES)).toMatch(/json/i);
    expect(server.calls.length, 'nothing was sent').toBe(callsBefore);

    const failed = await repl.run("call Fail -d '{}'", ALL_TYPES);
    expect(failed).toMatch(/Code: (InvalidArgument|INVALID_ARGUMENT) \(3\)/);
    expect(failed).toContain('google.rpc.BadRequest');

    expect(await repl.run("call NoSuchMethod -d '{}'", ALL_TYPES)).toContain('NoSuchMethod');

    const after = await repl.run('call Unary -d \'{"title":"still here"}\'', ALL_TYPES);
    expect(after).toContain('"title": "still here"');
    expect(await endWithCtrlD(repl)).toBe(0);
  });

  it('history survives a restart: Up brings back the last line of the previous run, `history` lists it', async () => {
    const selected = ['--package', 'tacostest.v1', '--service', 'AllTypes'];
    const first = await startRepl(server.address, selected);
    await first.waitForPrompt(ALL_TYPES);
    const line = 'call Unary -d \'{"title":"from the first run"}\'';
    await first.run(line, ALL_TYPES);
    expect(await endWithCtrlD(first)).toBe(0);

    const second = await startRepl(server.address, selected);
    await second.waitForPrompt(ALL_TYPES);
    await second.pty.press('Up');
    await second.pty.waitFor((screen) => screen.endsWith(`${second.prompt(ALL_TYPES)} ${line}`), {timeoutMs: WAIT_MS});
    await second.waitForPrompt(ALL_TYPES, await second.submit());
    expect(lastCall()?.requests[0].title).toBe('from the first run');
    expect(await second.run('history', ALL_TYPES)).toContain('from the first run');
  });

  it('a server on a unix socket restarts: the next call works on the same REPL', async () => {
    const socket = path.join(project, 'restarting.sock');
    let restarting = await startAllTypesServer({reflection: 'v1alpha', unixSocket: socket});
    try {
      const repl = await startRepl(restarting.address, ['--service', 'AllTypes']);
      await repl.waitForPrompt(ALL_TYPES);
      expect(await repl.run('call Unary -d \'{"title":"before"}\'', ALL_TYPES)).toContain('"title": "before"');
      await restarting.stop();
      restarting = await startAllTypesServer({reflection: 'v1alpha', unixSocket: socket});
      expect(await repl.run('call Unary -d \'{"title":"after"}\'', ALL_TYPES)).toContain('"title": "after"');
      expect(restarting.calls.at(-1)?.requests[0].title).toBe('after');
    } finally {
      await restarting.stop();
    }
  });

  it('`exit` ends with exit code 0', async () => {
    const repl = await atAllTypes();
    await repl.enter('exit');
    expect(await repl.pty.exitCode(WAIT_MS)).toBe(0);
  });
});

describe.skipIf(missing)('tacos repl against the gateway', () => {
  let redis: RedisProcess | undefined;
  let gateway: TestGateway | undefined;
  const QUEUE = 'gateway.v1.QueueService';
  const UPDATES = 'gateway.v1.WebSocketService';

  beforeAll(async () => {
    redis = await startRedis();
    gateway = await startGatewayOn(redis);
  });
  afterAll(async () => {
    await gateway?.close();
    await disposeRedis(redis);
  });

  /** A gateway with gRPC on and no backends: the queue's methods and StreamQueueUpdates need only Redis. */
  const startGatewayOn = (store: RedisProcess, env: Record<string, string> = {}) =>
    startStackGateway({REDIS_ADDRESS: store.address, GRPC_ENABLED: 'true', SERVER_ENVIRONMENT: 'development'}, env);

  /** A REPL at gateway.v1.QueueService, selected by flags. */
  async function atQueue(): Promise<Repl> {
    const repl = await startRepl(gateway!.grpc, ['--package', 'gateway.v1', '--service', 'QueueService']);
    await repl.waitForPrompt(QUEUE);
    return repl;
  }

  /** The waiting token JoinQueue printed. */
  const tokenIn = (output: string) => /"waitingToken": "([^"]+)"/.exec(output)?.[1] as string;

  it('package and service selection; JoinQueue through the prompts; GetQueueStatus with -d, and --repeat', async () => {
    const repl = await startRepl(gateway!.grpc);
    // gateway.v1 is its one package (gRPC's own, grpc.health.v1, aside): selected at start; it has three services.
    await repl.waitForPrompt('gateway.v1');
    await repl.run('service QueueService', QUEUE);
    await repl.run('package grpc.health.v1', 'grpc.health.v1.Health');
    await repl.run('package gateway.v1', 'gateway.v1');
    await repl.run('service QueueService', QUEUE);

    const from = await repl.enter('call JoinQueue');
    const joined = await repl.answerPrompts({event_id: 'evt_repl_prompts'}, QUEUE, from);
    expect(joined).toContain('"positionHint": 1');
    const token = tokenIn(joined);
    expect(token).toBeTruthy();

    const status = await repl.run(`call GetQueueStatus -d '{"waiting_token":"${token}"}'`, QUEUE);
    expect(status).toContain('"position": 1');
    expect(await repl.run('call GetQueueStatus --repeat', QUEUE)).toContain('"position": 1');
    expect(await endWithCtrlD(repl)).toBe(0);
  });

  it('StreamQueueUpdates prints the first update; Ctrl-C ends the stream, not the REPL', async () => {
    const repl = await atQueue();
    const token = tokenIn(await repl.run('call JoinQueue -d \'{"event_id":"evt_repl_stream"}\'', QUEUE));
    await repl.run('service WebSocketService', UPDATES);
    const from = await repl.enter(`call StreamQueueUpdates -d '{"waiting_token":"${token}"}'`);
    await repl.pty.waitFor(/"position": 1/, {from, timeoutMs: WAIT_MS});
    await repl.pty.press('C-c');
    expect(await repl.waitForPrompt(UPDATES, from)).toContain('Cancelled.');

    await repl.run('service QueueService', QUEUE);
    expect(await repl.run(`call GetQueueStatus -d '{"waiting_token":"${token}"}'`, QUEUE)).toContain('"position": 1');
  });

  it('desc and each show; Tab completes a method', async () => {
    const repl = await atQueue();
    expect(await repl.run('desc gateway.v1.JoinQueueRequest', QUEUE)).toContain('string event_id = 1;');
    expect(await repl.run('desc JoinQueue', QUEUE)).toMatch(/rpc JoinQueue\s*\(/);
    expect(await repl.run('show package', QUEUE)).toContain('gateway.v1');
    const services = await repl.run('show service', QUEUE);
    for (const name of ['GatewayService', 'QueueService', 'WebSocketService']) expect(services).toContain(name);
    expect(await repl.run('show message', QUEUE)).toContain('JoinQueueRequest');
    const rpcs = await repl.run('show rpc', QUEUE);
    for (const name of ['JoinQueue', 'GetQueueStatus', 'LeaveQueue', 'GetQueueStats']) expect(rpcs).toContain(name);

    await repl.pty.type('call JoinQ');
    await repl.pty.press('Tab');
    await repl.pty.waitFor(new RegExp(`${escape(QUEUE)}@${escape(gateway!.grpc)}> call JoinQueue$`), {
      timeoutMs: WAIT_MS,
    });
  });

  it('`header` reaches the gateway: its request id comes back in the headers --enrich shows, and in its log', async () => {
    const repl = await atQueue();
    await repl.run('header x-request-id=repl-e2e-1', QUEUE);
    expect(await repl.run('show header', QUEUE)).toMatch(tableRow('x-request-id', 'repl-e2e-1'));
    const enriched = await repl.run('call GetQueueStats -d \'{"event_id":"evt_repl_header"}\' --enrich', QUEUE);
    expect(enriched).toMatch(/x-request-id: repl-e2e-1/);
    expect(gateway!.logs).toContainEqual(
      expect.objectContaining({req_id: 'repl-e2e-1', method: '/gateway.v1.QueueService/GetQueueStats'}),
    );
  });

  it('the gateway restarts on the same port: the next call works on the same REPL', async () => {
    const repl = await atQueue();
    expect(await repl.run('call JoinQueue -d \'{"event_id":"evt_repl_restart"}\'', QUEUE)).toContain('"positionHint"');
    const grpcPort = gateway!.grpcPort as number;
    await gateway!.close();
    // The queue lives in Redis: the restarted gateway knows the waiting users.
    gateway = await startGatewayOn(redis!, {GRPC_PORT: String(grpcPort)});
    const stats = await repl.run('call GetQueueStats -d \'{"event_id":"evt_repl_restart"}\'', QUEUE);
    expect(stats).toContain('"eventId": "evt_repl_restart"');
  });

  it('a NOT_FOUND answer prints the ERROR block and the REPL goes on; Ctrl-D ends with 0', async () => {
    const repl = await atQueue();
    const failed = await repl.run('call GetQueueStatus -d \'{"waiting_token":"garbage"}\'', QUEUE);
    expect(failed).toMatch(/Code: (NotFound|NOT_FOUND) \(5\)/);
    expect(failed).toMatch(/"reason": "TOKEN_NOT_FOUND"/);
    expect(await repl.run('call GetQueueStats -d \'{"event_id":"evt_repl_stream"}\'', QUEUE)).toMatch(/\{/);
    expect(await endWithCtrlD(repl)).toBe(0);
  });
});
