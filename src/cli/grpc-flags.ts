import * as Flags from '@oclif/core/flags';
import {durationFlag, envFlag} from './flags.js';
import type {ConnectionOptions} from '../services/grpc-client/run-call.js';
import {defaultGateway} from '../services/stack/default-gateway.js';

/** How to reach a gRPC server and learn its schema: the flags of call, list and describe. */
export const connectionFlags = {
  env: envFlag,
  addr: Flags.string({
    char: 'a',
    description: 'Server address: HOST:PORT or unix:PATH (default: the gateway, 127.0.0.1:GRPC_PORT).',
    helpValue: 'HOST:PORT',
  }),
  host: Flags.string({description: 'Server host (Evans style; with --port).'}),
  port: Flags.integer({char: 'p', description: 'Server port (Evans style).', min: 1, max: 65_535}),
  proto: Flags.string({
    description: '.proto file to read the schema from instead of reflection (repeatable).',
    multiple: true,
    multipleNonGreedy: true,
    helpValue: 'FILE',
  }),
  'import-path': Flags.string({
    char: 'I',
    description: 'Directory to resolve --proto imports in (repeatable).',
    multiple: true,
    multipleNonGreedy: true,
    helpValue: 'DIR',
  }),
  header: Flags.string({
    char: 'H',
    description:
      "Metadata 'key: value' sent with the call, and with reflection unless --reflect-header is given (repeatable).",
    multiple: true,
    multipleNonGreedy: true,
  }),
  'reflect-header': Flags.string({
    description: "Metadata 'key: value' sent with reflection requests only (repeatable).",
    multiple: true,
    multipleNonGreedy: true,
  }),
  token: Flags.string({description: 'Sends authorization: Bearer TOKEN (e.g. $(tacos token)).'}),
  tls: Flags.boolean({description: 'Use TLS (the default for hosts other than loopback).'}),
  plaintext: Flags.boolean({description: 'No TLS (the default for loopback and unix sockets).'}),
  insecure: Flags.boolean({description: 'TLS without verifying the server certificate.'}),
  cacert: Flags.string({description: 'CA certificate (PEM) to verify the server with.', helpValue: 'FILE'}),
  cert: Flags.string({description: 'Client certificate (PEM), with --key.', helpValue: 'FILE'}),
  key: Flags.string({description: 'Client private key (PEM), with --cert.', helpValue: 'FILE'}),
  servername: Flags.string({description: 'Server name to verify the certificate against (and send as SNI).'}),
  'connect-timeout': durationFlag({description: 'How long to wait for a connection (default 5s).', default: 5000}),
  refresh: Flags.boolean({description: 'Ask the server for its schema again instead of using the cached one.'}),
};

/** Evans's selection: a package and a service, so methods are named short (tacos call, tacos repl). */
export const selectionFlags = {
  package: Flags.string({description: 'Package of the methods named (Evans style), e.g. gateway.v1.'}),
  service: Flags.string({description: 'Service of the methods named (Evans style), e.g. QueueService.'}),
};

type ConnectionFlagValues = {
  env?: string;
  addr?: string;
  host?: string;
  port?: number;
  proto?: string[];
  'import-path'?: string[];
  header?: string[];
  'reflect-header'?: string[];
  token?: string;
  tls: boolean;
  plaintext: boolean;
  insecure: boolean;
  cacert?: string;
  cert?: string;
  key?: string;
  servername?: string;
  'connect-timeout': number;
  refresh: boolean;
};

export function connectionOptions(flags: ConnectionFlagValues): ConnectionOptions {
  return {
    defaultGateway: defaultGateway(flags.env),
    address: flags.addr,
    host: flags.host,
    port: flags.port,
    protoFiles: flags.proto,
    importDirs: flags['import-path'],
    headers: flags.header ?? [],
    reflectHeaders: flags['reflect-header'],
    token: flags.token,
    tls: flags.tls,
    plaintext: flags.plaintext,
    insecure: flags.insecure,
    cacert: flags.cacert,
    cert: flags.cert,
    key: flags.key,
    servername: flags.servername,
    connectTimeoutMs: flags['connect-timeout'],
    refresh: flags.refresh,
  };
}
