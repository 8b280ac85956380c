import {usageError} from '../errors.js';

/** One REPL line, parsed. Names are Evans's, so its users type what they know. */
export type ReplCommand =
  | {name: 'none'}
  | {name: 'package'; package: string}
  | {name: 'service'; service: string}
  | ({name: 'call'} & CallCommand)
  | {name: 'desc'; symbol: string}
  | {name: 'show'; what: ShowWhat}
  | {name: 'header'; set: Array<[string, string]>; remove: string[]}
  | {name: 'reflect'}
  | {name: 'history'}
  | {name: 'export'; grpcurl: boolean}
  | {name: 'exit'}
  | {name: 'help'};

export interface CallCommand {
  /** Empty with --repeat: the method of the last call. */
  method: string;
  enrich: boolean;
  repeat: boolean;
  emitDefaults: boolean;
  /** -d: JSON (one or several objects), @file. */
  data?: string;
  /** --example FILE: write the request skeleton there instead of calling. */
  example?: string;
  force: boolean;
}

export const SHOW_WHATS = ['package', 'service', 'message', 'rpc', 'header'] as const;
export type ShowWhat = (typeof SHOW_WHATS)[number];

/** Each command with its usage and what it does: `help`, and the completion of command names. */
export const COMMAND_HELP: Array<[name: string, usage: string, summary: string]> = [
  ['package', 'package NAME', 'select a package (its only service is selected too)'],
  ['service', 'service NAME', 'select a service of the package (or pkg.Service)'],
  [
    'call',
    'call METHOD [--enrich] [--repeat] [--emit-defaults] [-d JSON|-d @FILE] [--example FILE [--force]]',
    'call a method: prompts field by field without -d; --enrich prints headers and trailers; --repeat sends the last request of METHOD again (of the last call without METHOD); --example writes a request skeleton to FILE to edit, then `call METHOD -d @FILE` (an existing FILE only with --force)',
  ],
  ['desc', 'desc SYMBOL', 'describe a message, enum, service or method'],
  [
    'show',
    'show package|service|message|rpc|header',
    'list packages, services (with their RPCs), messages, RPCs of the service, headers',
  ],
  [
    'header',
    'header KEY=VALUE ... | header -r KEY ...',
    'add headers sent with every call; -r KEY (or KEY, or KEY=, as Evans) removes one',
  ],
  ['reflect', 'reflect', 'ask the server for its schema again and say what changed'],
  ['history', 'history', 'the requests made (kept across runs)'],
  [
    'export',
    'export [--grpcurl]',
    'the last call as a `tacos call` command line (or grpcurl\'s); secrets are never printed: authorization becomes "authorization: Bearer $TACOS_TOKEN", other secret headers $TACOS_<KEY>',
  ],
  ['exit', 'exit', 'leave (Ctrl-D too); Ctrl-C clears the line, or cancels the call in flight'],
  ['help', 'help', 'this list'],
];

export const COMMAND_NAMES = COMMAND_HELP.map(([name]) => name);

export const CALL_FLAGS = ['--enrich', '--repeat', '--emit-defaults', '-d', '--example', '--force'];

/** One line of the REPL as a command; bad input is a usage error naming the usage. */
export function parseCommand(line: string): ReplCommand {
  const words = splitWords(line);
  if (words.length === 0) return {name: 'none'};
  const [name, ...args] = words;
  const usage = (message: string) =>
    usageError(message, `Usage: ${COMMAND_HELP.find(([command]) => command === name)?.[1] ?? 'help'}`);
  const one = (what: string) => {
    if (args.length !== 1) throw usage(args.length ? `${name} takes one ${what}.` : `${name} needs a ${what}.`);
    return args[0];
  };
  const none = () => {
    if (args.length) throw usage(`${name} takes no arguments.`);
  };
  switch (name) {
    case 'package':
      return {name, package: one('package name')};
    case 'service':
      return {name, service: one('service name')};
    case 'desc':
      return {name, symbol: one('symbol')};
    case 'show': {
      const what = one(SHOW_WHATS.join('|'));
      if (!(SHOW_WHATS as readonly string[]).includes(what)) throw usage(`Cannot show "${what}".`);
      return {name, what: what as ShowWhat};
    }
    case 'call':
      return {name, ...parseCall(args, usage)};
    case 'header':
      return {name, ...parseHeaders(args, usage)};
    case 'export': {
      if (args.some((arg) => arg !== '--grpcurl'))
        throw usage(`Unknown argument "${args.find((a) => a !== '--grpcurl')}".`);
      return {name, grpcurl: args.length > 0};
    }
    case 'reflect':
    case 'history':
    case 'exit':
    case 'help':
      none();
      return {name};
    case 'quit':
      none();
      return {name: 'exit'};
    default:
      throw usageError(`Unknown command "${name}".`, `Commands: ${COMMAND_NAMES.join(', ')} (help tells more).`);
  }
}

function parseCall(args: string[], usage: (message: string) => Error): CallCommand {
  const call: CallCommand = {method: '', enrich: false, repeat: false, emitDefaults: false, force: false};
  const value = (i: number, flag: string) => {
    if (i >= args.length) throw usage(`${flag} needs a value.`);
    return args[i];
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === '--enrich' || arg === '-e') call.enrich = true;
    else if (arg === '--repeat' || arg === '-r') call.repeat = true;
    else if (arg === '--emit-defaults') call.emitDefaults = true;
    else if (arg === '--force') call.force = true;
    else if (arg === '-d' || arg === '--data') call.data = value(++i, arg);
    else if (arg.startsWith('--data=')) call.data = arg.slice('--data='.length);
    else if (arg === '--example') call.example = value(++i, arg);
    else if (arg.startsWith('-')) throw usage(`Unknown flag "${arg}".`);
    else if (call.method) throw usage(`One method at a time ("${call.method}", then "${arg}").`);
    else call.method = arg;
  }
  if (!call.method && !call.repeat) throw usage('call needs a method.');
  if (call.example && (call.data !== undefined || call.repeat))
    throw usage('--example writes a skeleton: no -d or --repeat with it.');
  if (call.repeat && call.data !== undefined) throw usage('--repeat sends the last request: no -d with it.');
  return call;
}

function parseHeaders(
  args: string[],
  usage: (message: string) => Error,
): {set: Array<[string, string]>; remove: string[]} {
  const set: Array<[string, string]> = [];
  const remove: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '-r' || args[i] === '--remove') {
      if (i + 1 >= args.length) throw usage('-r needs a header key.');
      remove.push(args[++i].toLowerCase());
      continue;
    }
    const equals = args[i].indexOf('=');
    if (equals === 0) throw usage(`"${args[i]}" is not KEY=VALUE.`);
    const key = (equals < 0 ? args[i] : args[i].slice(0, equals)).trim().toLowerCase();
    // gRPC metadata keys: lowercase letters, digits, and - _ . only.
    if (!/^[0-9a-z_.-]+$/.test(key)) throw usage(`"${key}" is not a metadata key (letters, digits, - _ .).`);
    const value = equals < 0 ? '' : args[i].slice(equals + 1);
    // As Evans: `header key` and `header key=` remove it.
    if (value === '') remove.push(key);
    else set.push([key, value]);
  }
  return {set, remove};
}

/**
 * A line as words, as a shell splits it: whitespace between words, '…' literal, "…" with \\
 * escapes. A word that starts a JSON value (`{` or `[`) runs to its closing bracket whatever it
 * holds, so `call M -d {"name": "a b"}` needs no quotes; several JSON values in a row are one
 * word (a stream's requests).
 */
export function splitWords(line: string): string[] {
  return scanWords(line).words;
}

/** The words, and whether the line ends inside an unfinished word (completion must not complete it then). */
export function scanWords(line: string): {words: string[]; open: boolean} {
  const words: string[] = [];
  let i = 0;
  let open = false;
  while (i < line.length) {
    while (i < line.length && /\s/.test(line[i])) i++;
    if (i >= line.length) break;
    let word = '';
    if (line[i] === '{' || line[i] === '[') {
      const end = jsonSequenceEnd(line, i);
      word = line.slice(i, end);
      open = end >= line.length && !/[}\]]\s*$/.test(word);
      i = end;
      words.push(word.trim());
      continue;
    }
    open = false;
    while (i < line.length && !/\s/.test(line[i])) {
      const char = line[i];
      if (char === "'") {
        const close = line.indexOf("'", i + 1);
        if (close < 0) {
          word += line.slice(i + 1);
          i = line.length;
          open = true;
          break;
        }
        word += line.slice(i + 1, close);
        i = close + 1;
      } else if (char === '"') {
        i++;
        while (i < line.length && line[i] !== '"') {
          if (line[i] === '\\' && i + 1 < line.length) i++;
          word += line[i++];
        }
        if (i >= line.length) open = true;
        i++;
      } else if (char === '\\' && i + 1 < line.length) {
        word += line[i + 1];
        i += 2;
      } else {
        word += char;
        i++;
      }
    }
    words.push(word);
  }
  return {words, open};
}

/** Where JSON values starting at `start` end: past the last balanced bracket of a run of values. */
function jsonSequenceEnd(line: string, start: number): number {
  let depth = 0;
  let inString = false;
  let i = start;
  for (; i < line.length; i++) {
    const char = line[i];
    if (inString) {
      if (char === '\\') i++;
      else if (char === '"') inString = false;
    } else if (char === '"') inString = true;
    else if (char === '{' || char === '[') depth++;
    else if (char === '}' || char === ']') depth--;
    else if (depth === 0 && !/\s/.test(char)) return i;
    // Between values only whitespace; another value continues the word.
    if (depth === 0 && !inString && (char === '}' || char === ']')) {
      let next = i + 1;
      while (next < line.length && /\s/.test(line[next])) next++;
      if (line[next] !== '{' && line[next] !== '[') return i + 1;
    }
  }
  return i;
}
