import {existsSync, readFileSync} from 'node:fs';
import path from 'node:path';
import {isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Node, type Pair, type YAMLMap} from 'yaml';
import {parseDurationMs} from '../config.js';
import {TacosError} from '../errors.js';

/** The names of the stack file `tacos up` reads from the project root, first found wins. */
export const STACK_FILE_NAMES = ['tacos.stack.yaml', 'tacos.stack.yml'];

/** What says a service is ready: an HTTP 200, an open TCP port, gRPC health SERVING, or a line of its output. */
export type ReadyCheck = {http: string} | {tcp: string} | {grpc: string} | {log: string};

/** A service of the stack file: run by `tacos up` with the built-in ones, or in place of one of the same name. */
export interface UserService {
  name: string;
  /** A shell command line, or an argv run without a shell. */
  command: string | string[];
  /** Absolute: the stack file's `cwd` resolved against its folder. */
  cwd: string;
  env: Record<string, string>;
  dependsOn: string[];
  ready?: ReadyCheck;
  readyTimeoutMs?: number;
  ports: number[];
}

export const BUILTIN_SERVICES = ['redis', 'reservation', 'payment', 'gateway'];
/** What each built-in waits for (the gateway needs Redis); a stack file's service of that name sets its own. */
export const BUILTIN_DEPENDS: Record<string, string[]> = {gateway: ['redis']};

const SERVICE_KEYS = ['command', 'cwd', 'env', 'environment', 'depends_on', 'ready', 'ports'];
const READY_KINDS = ['http', 'tcp', 'grpc', 'log'];
const CONDITIONS = ['service_started', 'service_healthy', 'process_started', 'process_healthy'];
const NAME = /^[a-z0-9][a-z0-9_-]*$/;

/** The stack file to use: the one given (which must exist), else one of STACK_FILE_NAMES in the project dir, else none. */
export function findStackFile(projectDir: string, given?: string): string | undefined {
  if (given) {
    const file = path.resolve(projectDir, given);
    if (!existsSync(file))
      throw new TacosError(`No stack file at ${file}.`, {
        hint: 'Give the path of a tacos.stack.yaml with --stack-file.',
        code: 'STACK_FILE',
      });
    return file;
  }
  return STACK_FILE_NAMES.map((name) => path.join(projectDir, name)).find((file) => existsSync(file));
}

/** The services of a stack file, checked whole: any mistake is a TacosError naming the file and line, before anything starts. */
export function loadStackFile(file: string): UserService[] {
  const lines = new LineCounter();
  const text = readFileSync(file, 'utf8');
  const doc = parseDocument(text, {lineCounter: lines, prettyErrors: false, uniqueKeys: true});
  const fail = (at: Node | Pair | number | undefined, message: string, hint: string): never => {
    const offset = typeof at === 'number' ? at : rangeOf(at);
    throw new TacosError(`${file}:${lines.linePos(offset).line}: ${message}`, {hint, code: 'STACK_FILE'});
  };
  if (doc.errors.length > 0) {
    const error = doc.errors[0];
    fail(
      error.pos[0],
      `not valid YAML: ${error.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')}.`,
      'Fix the YAML syntax at that line (indentation, a missing colon or quote).',
    );
  }
  const root = doc.contents;
  if (!isMap(root))
    return fail(
      root ?? 0,
      'the stack file is not a map with a `services:` key.',
      'Start it with `services:` and one entry per service.',
    );
  let services: YAMLMap | undefined;
  for (const pair of root.items) {
    const key = keyOf(pair);
    if (key === 'services') {
      if (!isMap(pair.value))
        fail(
          pair,
          '`services` must be a map of service names to their settings.',
          'Write `services:` then `  web:` with `command:` below it.',
        );
      services = pair.value as YAMLMap;
    } else if (key !== 'version') {
      fail(pair, `unknown key "${key}".`, 'The stack file takes `services:` (and an ignored `version:`).');
    }
  }
  if (!services || services.items.length === 0)
    return fail(
      root,
      'no `services:` in the stack file.',
      'Add `services:` with at least one service that has a `command:`.',
    );

  const result = services.items.map((pair) => readService(pair, path.dirname(file), fail));
  const names = new Set([...BUILTIN_SERVICES, ...result.map((service) => service.name)]);
  services.items.forEach((pair, i) => {
    for (const dep of result[i].dependsOn) {
      if (!names.has(dep))
        fail(
          pair,
          `${result[i].name} depends on "${dep}", which is no service.`,
          `depends_on names built-ins (${BUILTIN_SERVICES.join(', ')}) or services of this file.`,
        );
    }
  });
  const cycle = findCycle(result);
  // Built-ins alone make no cycle: one of the file's services is in it.
  const culprit = cycle && result.findIndex((service) => cycle.includes(service.name));
  if (cycle)
    fail(
      services.items[culprit!],
      `depends_on makes a cycle: ${cycle.join(' -> ')}.`,
      'Remove one of these dependencies.',
    );
  return result;
}

type Fail = (at: Node | Pair | number | undefined, message: string, hint: string) => never;

function readService(pair: Pair, baseDir: string, fail: Fail): UserService {
  const name = keyOf(pair);
  if (!NAME.test(name) || name === 'supervisor')
    fail(pair, `"${name}" is not a service name.`, 'Use lower-case letters, digits, - and _ (and not "supervisor").');
  if (!isMap(pair.value))
    return fail(
      pair,
      `service ${name} must be a map with at least \`command:\`.`,
      `Write \`command: ...\` indented under \`${name}:\`.`,
    );
  const service: UserService = {
    name,
    command: '',
    cwd: baseDir,
    env: {},
    dependsOn: [...(BUILTIN_DEPENDS[name] ?? [])],
    ports: [],
  };
  let hasCommand = false;
  for (const item of pair.value.items) {
    const key = keyOf(item);
    const value = item.value as Node | null;
    const where = `${name}.${key}`;
    switch (key) {
      case 'command': {
        if (isScalar(value) && typeof value.value === 'string' && value.value.trim()) service.command = value.value;
        else if (
          isSeq(value) &&
          value.items.length > 0 &&
          value.items.every((part) => isScalar(part) && ['string', 'number'].includes(typeof part.value))
        )
          service.command = value.items.map((part) => String((part as {value: unknown}).value));
        else
          fail(
            item,
            `${where} must be a command line (a string) or a non-empty list of arguments.`,
            'E.g. `command: npm run dev` or `command: [node, server.js]`.',
          );
        hasCommand = true;
        break;
      }
      case 'cwd':
        service.cwd = path.resolve(baseDir, scalarString(item, where, fail));
        break;
      case 'env':
      case 'environment':
        service.env = readEnv(item, where, fail);
        break;
      case 'depends_on':
        service.dependsOn = readDependsOn(item, where, fail);
        break;
      case 'ready':
        Object.assign(service, readReady(item, where, fail));
        break;
      case 'ports':
        service.ports = readPorts(item, where, fail);
        break;
      default:
        fail(item, `unknown key "${key}" in service ${name}.`, `A service takes ${SERVICE_KEYS.join(', ')}.`);
    }
  }
  if (!hasCommand)
    fail(pair, `service ${name} has no \`command:\`.`, `Add \`command: ...\` under \`${name}:\` (the program to run).`);
  return service;
}

function readEnv(item: Pair, where: string, fail: Fail): Record<string, string> {
  const value = item.value;
  const env: Record<string, string> = {};
  if (isMap(value)) {
    for (const entry of value.items) {
      const entryValue = entry.value;
      if (entryValue !== null && !isScalar(entryValue))
        fail(entry, `${where}.${keyOf(entry)} must be a single value.`, 'Quote it as a string.');
      env[keyOf(entry)] = isScalar(entryValue) && entryValue.value !== null ? String(entryValue.value) : '';
    }
    return env;
  }
  if (isSeq(value)) {
    for (const entry of value.items) {
      const text = isScalar(entry) ? String(entry.value) : '';
      const match = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(text);
      if (!match)
        fail(
          entry as Node,
          `${where}: "${text}" is not KEY=VALUE.`,
          'Write each entry as KEY=VALUE, or make env a map.',
        );
      env[match[1]] = match[2];
    }
    return env;
  }
  return fail(
    item,
    `${where} must be a map (KEY: value) or a list of KEY=VALUE.`,
    'E.g. `env: {VITE_API_BASE_URL: http://localhost:8000}`.',
  );
}

function readDependsOn(item: Pair, where: string, fail: Fail): string[] {
  const value = item.value;
  if (isSeq(value)) {
    return value.items.map((entry) => {
      if (!isScalar(entry) || typeof entry.value !== 'string')
        fail(
          entry as Node,
          `${where} lists a name that is not a string.`,
          'List service names, e.g. `depends_on: [gateway]`.',
        );
      return (entry as {value: string}).value;
    });
  }
  if (isMap(value)) {
    // Compose's long form: {gateway: {condition: service_healthy}}; every condition waits for readiness here.
    return value.items.map((entry) => {
      const condition = entry.value;
      const ok =
        condition === null ||
        (isMap(condition) &&
          condition.items.every(
            (setting) =>
              keyOf(setting) === 'condition' &&
              isScalar(setting.value) &&
              CONDITIONS.includes(String(setting.value.value)),
          ));
      if (!ok)
        fail(
          entry,
          `${where}.${keyOf(entry)} must be {condition: ${CONDITIONS.join('|')}}.`,
          'tacos starts a service once what it depends on is ready, whatever the condition.',
        );
      return keyOf(entry);
    });
  }
  return fail(
    item,
    `${where} must be a list of service names (or compose's map of conditions).`,
    'E.g. `depends_on: [gateway]`.',
  );
}

function readReady(item: Pair, where: string, fail: Fail): Pick<UserService, 'ready' | 'readyTimeoutMs'> {
  const value = item.value;
  if (!isMap(value))
    return fail(
      item,
      `${where} must be a map with one of ${READY_KINDS.join(', ')}.`,
      'E.g. `ready: {http: http://127.0.0.1:3000/}` or `ready: {log: "ready in"}`.',
    );
  let ready: ReadyCheck | undefined;
  let readyTimeoutMs: number | undefined;
  for (const entry of value.items) {
    const kind = keyOf(entry);
    const text = scalarString(entry, `${where}.${kind}`, fail);
    if (kind === 'timeout') {
      readyTimeoutMs = parseDurationMs(text);
      if (!readyTimeoutMs)
        fail(entry, `${where}.timeout "${text}" is not a duration.`, 'E.g. `timeout: 60s` (ms, s, m, h).');
    } else if (!READY_KINDS.includes(kind)) {
      fail(
        entry,
        `${where}: "${kind}" is not a kind of readiness check.`,
        `Use one of ${READY_KINDS.join(', ')} (and an optional timeout).`,
      );
    } else if (ready) {
      fail(entry, `${where} has more than one check.`, `Keep one of ${READY_KINDS.join(', ')}.`);
    } else {
      ready = checkReady(kind, text, entry, where, fail);
    }
  }
  if (!ready) fail(item, `${where} names no check.`, `Add one of ${READY_KINDS.join(', ')}.`);
  return {ready, readyTimeoutMs};
}

function checkReady(kind: string, text: string, at: Pair, where: string, fail: Fail): ReadyCheck {
  if (kind === 'http') {
    if (!/^https?:\/\/[^/]/.test(text) || !URL.canParse(text))
      fail(at, `${where}.http "${text}" is not an http:// URL.`, 'E.g. `http: http://127.0.0.1:3000/`.');
    return {http: text};
  }
  if (kind === 'log') {
    try {
      new RegExp(text);
    } catch {
      fail(
        at,
        `${where}.log "${text}" is not a regular expression.`,
        'Escape special characters, e.g. `log: "ready in \\\\d+"`.',
      );
    }
    return {log: text};
  }
  if (!/^[^\s:]+:\d{1,5}$/.test(text))
    fail(at, `${where}.${kind} "${text}" is not host:port.`, `E.g. \`${kind}: 127.0.0.1:3000\`.`);
  return kind === 'tcp' ? {tcp: text} : {grpc: text};
}

function readPorts(item: Pair, where: string, fail: Fail): number[] {
  const value = item.value;
  if (!isSeq(value)) return fail(item, `${where} must be a list of port numbers.`, 'E.g. `ports: [3000]`.');
  return value.items.map((entry) => {
    const port = isScalar(entry) ? Number(entry.value) : Number.NaN;
    if (!Number.isInteger(port) || port < 1 || port > 65_535)
      fail(
        entry as Node,
        `${where}: ${isScalar(entry) ? String(entry.value) : 'that entry'} is not a port.`,
        'List whole numbers from 1 to 65535 (the ports the service listens on).',
      );
    return port;
  });
}

function scalarString(item: Pair, where: string, fail: Fail): string {
  const value = item.value;
  if (isScalar(value) && ['string', 'number'].includes(typeof value.value) && String(value.value).trim())
    return String(value.value);
  return fail(item, `${where} must be a non-empty string.`, 'Write a single value after the colon.');
}

function keyOf(pair: Pair): string {
  return isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
}

function rangeOf(at: Node | Pair | undefined): number {
  if (!at) return 0;
  const node = isPair(at) ? ((at.key as Node | null) ?? (at.value as Node | null)) : at;
  return node?.range?.[0] ?? 0;
}

/** A cycle of depends_on (the names along it, first repeated at the end), or undefined. */
function findCycle(services: UserService[]): string[] | undefined {
  const deps = new Map<string, string[]>(BUILTIN_SERVICES.map((name) => [name, BUILTIN_DEPENDS[name] ?? []]));
  for (const service of services) deps.set(service.name, service.dependsOn);
  const done = new Set<string>();
  const visit = (name: string, trail: string[]): string[] | undefined => {
    if (trail.includes(name)) return [...trail.slice(trail.indexOf(name)), name];
    if (done.has(name)) return undefined;
    for (const dep of deps.get(name) ?? []) {
      const cycle = visit(dep, [...trail, name]);
      if (cycle) return cycle;
    }
    done.add(name);
    return undefined;
  };
  for (const service of services) {
    const cycle = visit(service.name, []);
    if (cycle) return cycle;
  }
  return undefined;
}
