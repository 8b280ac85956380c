import type {JsonValue} from '@bufbuild/protobuf';
import {parseHeader} from '../grpc-client/invoke.js';
import type {ConnectionOptions} from '../grpc-client/run-call.js';
import type {Target} from '../grpc-client/target.js';

/** A call as made, to be written again as a command line. */
export interface MadeCall {
  /** pkg.Service/Method */
  method: string;
  requests: JsonValue[];
  /** Every header sent with the call: the target's (-H, --token) and the REPL's `header`. */
  headers: Array<[string, string]>;
  enrich: boolean;
  emitDefaults: boolean;
}

/** How the target was reached: what both command lines repeat. */
export interface Reach {
  target: Target;
  options: Pick<
    ConnectionOptions,
    'insecure' | 'cacert' | 'cert' | 'key' | 'servername' | 'protoFiles' | 'importDirs' | 'reflectHeaders'
  >;
}

/** The call as `tacos call ...`: flags of the target, headers (secrets as $VARIABLES), method, request. */
export function tacosCommandLine(call: MadeCall, {target, options}: Reach): string {
  const words = ['tacos', 'call', '--addr', shellQuote(target.address), target.tls ? '--tls' : '--plaintext'];
  words.push(...targetWords(options, TACOS_FLAGS));
  for (const header of call.headers) words.push('-H', headerWord(header));
  for (const header of options.reflectHeaders ?? []) words.push('--reflect-header', headerWord(parseHeader(header)));
  if (call.enrich) words.push('-v');
  if (call.emitDefaults) words.push('--emit-defaults');
  words.push(shellQuote(call.method), '-d', shellQuote(requestText(call.requests)));
  return words.join(' ');
}

/** The call as grpcurl's command line (grpcurl -plaintext -H 'k: v' -d '{...}' addr pkg.Svc/Method). */
export function grpcurlCommandLine(call: MadeCall, {target, options}: Reach): string {
  const words = ['grpcurl'];
  if (!target.tls) words.push('-plaintext');
  words.push(...targetWords(options, GRPCURL_FLAGS));
  // grpcurl's -H goes to reflection too; with reflection headers of their own, call headers are -rpc-header.
  const reflectHeaders = options.reflectHeaders ?? [];
  for (const header of call.headers) words.push(reflectHeaders.length ? '-rpc-header' : '-H', headerWord(header));
  for (const header of reflectHeaders) words.push('-reflect-header', headerWord(parseHeader(header)));
  if (call.enrich) words.push('-v');
  if (call.emitDefaults) words.push('-emit-defaults');
  words.push('-d', shellQuote(requestText(call.requests)));
  if (target.address.startsWith('unix:')) words.push('-unix', shellQuote(target.address.slice('unix:'.length)));
  else words.push(shellQuote(target.address));
  words.push(shellQuote(call.method));
  return words.join(' ');
}

/** The flag names of TLS and --proto options, in each tool's spelling. */
type TargetFlags = Record<'insecure' | 'cacert' | 'cert' | 'key' | 'servername' | 'protoFiles' | 'importDirs', string>;

const TACOS_FLAGS: TargetFlags = {
  insecure: '--insecure',
  cacert: '--cacert',
  cert: '--cert',
  key: '--key',
  servername: '--servername',
  protoFiles: '--proto',
  importDirs: '-I',
};

const GRPCURL_FLAGS: TargetFlags = {
  insecure: '-insecure',
  cacert: '-cacert',
  cert: '-cert',
  key: '-key',
  servername: '-servername',
  protoFiles: '-proto',
  importDirs: '-import-path',
};

function targetWords(options: Reach['options'], flags: TargetFlags): string[] {
  const words = options.insecure ? [flags.insecure] : [];
  for (const name of ['cacert', 'cert', 'key', 'servername'] as const) {
    const value = options[name];
    if (value) words.push(flags[name], shellQuote(value));
  }
  for (const file of options.protoFiles ?? []) words.push(flags.protoFiles, shellQuote(file));
  for (const dir of options.importDirs ?? []) words.push(flags.importDirs, shellQuote(dir));
  return words;
}

/** The secret-holding headers of a call: export names their variables instead of printing them. */
export function secretVariables(headers: Array<[string, string]>): string[] {
  return [...new Set(headers.flatMap(([key, value]) => secretPlaceholder(key, value)?.variable ?? []))];
}

/** A word the shell reads back as `text`: bare when it is safe, else in single quotes. */
export function shellQuote(text: string): string {
  if (/^[\w@%+=:,./-]+$/.test(text)) return text;
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/** Requests as -d takes them: one compact JSON object each, several for a stream. */
function requestText(requests: JsonValue[]): string {
  return requests.length ? requests.map((request) => JSON.stringify(request)).join(' ') : '{}';
}

/** `key: value`, quoted; a secret as a variable in double quotes, so the shell fills it in. */
function headerWord([key, value]: [string, string]): string {
  const secret = secretPlaceholder(key, value);
  return secret ? `"${key}: ${secret.text}"` : shellQuote(`${key}: ${value}`);
}

/** Headers whose values are not shown (show header) nor exported. */
export function isSecretHeader(key: string): boolean {
  return /authorization|cookie|token|secret|password|api-?key/i.test(key);
}

function secretPlaceholder(key: string, value: string): {variable: string; text: string} | undefined {
  if (!isSecretHeader(key)) return undefined;
  if (key === 'authorization' && /^bearer\s/i.test(value))
    return {variable: 'TACOS_TOKEN', text: `${value.split(/\s/)[0]} $TACOS_TOKEN`};
  const variable = `TACOS_${key.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
  return {variable, text: `$${variable}`};
}
