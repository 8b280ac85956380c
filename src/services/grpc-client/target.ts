import {readFile} from 'node:fs/promises';
import {connect as tlsConnect} from 'node:tls';
import {connect as netConnect, isIP, type NetConnectOpts} from 'node:net';
import {
  connectivityState,
  credentials as grpcCredentials,
  type ChannelCredentials,
  type Client,
  type ChannelOptions,
} from '@grpc/grpc-js';
import {TacosError, errorMessage, usageError} from '../errors.js';
import {isLoopbackHost, socketOpen} from '../net.js';

/**
 * The active environment's gateway, for a call that names no address. The caller gives it: the
 * client kit knows neither environments nor the stack.
 */
export interface DefaultGateway {
  /** host:port of the gateway's gRPC port. */
  address(): Promise<string>;
  /** The env name of the running stack when its gateway serves no gRPC, else undefined. */
  stackWithoutGrpc(): Promise<string | undefined>;
}

export interface TargetOptions {
  /** Where a call goes when no address, host or port is given. */
  defaultGateway?: DefaultGateway;
  /** host:port, or unix:PATH. */
  address?: string;
  host?: string;
  port?: number;
  tls?: boolean;
  plaintext?: boolean;
  insecure?: boolean;
  cacert?: string;
  cert?: string;
  key?: string;
  servername?: string;
}

export interface Target {
  address: string;
  credentials: ChannelCredentials;
  channelOptions: ChannelOptions;
  tls: boolean;
  /** The address is the active environment's gateway (none was given): a stack without gRPC explains a silence. */
  gateway?: DefaultGateway;
  /** How the certificate is checked (for explaining a failed handshake). */
  verify?: {ca: Buffer | null; servername?: string; insecure: boolean};
}

/**
 * Where a call goes and how: the default gateway its caller gives (the active environment's,
 * 127.0.0.1:GRPC_PORT) unless told otherwise; plaintext for loopback and unix sockets, TLS for
 * anything else, as grpcurl users expect.
 */
export async function resolveTarget(options: TargetOptions): Promise<Target> {
  let address = options.address;
  if (!address && (options.host || options.port)) address = `${options.host ?? '127.0.0.1'}:${options.port ?? 9090}`;
  const gateway = address ? undefined : options.defaultGateway;
  if (!address) {
    if (!gateway) throw usageError('Give the server address (host:port, or unix:PATH).');
    address = await gateway.address();
  }
  const unix = address.startsWith('unix:');
  const host = unix ? '' : address.replace(/:\d+$/, '');
  if (!unix && !/:\d+$/.test(address)) throw usageError(`"${address}" is not host:port (or unix:PATH).`);
  if (options.tls && options.plaintext) throw usageError('--tls and --plaintext contradict each other.');
  const tls =
    options.tls ||
    Boolean(options.insecure || options.cacert || options.cert) ||
    (!options.plaintext && !unix && !isLoopbackHost(host));
  const channelOptions: ChannelOptions = {
    'grpc.use_local_subchannel_pool': 1,
    // A server restarted (a developer's, on this machine) is tried again within 2 s, not grpc's 2 minutes.
    'grpc.initial_reconnect_backoff_ms': 500,
    'grpc.max_reconnect_backoff_ms': 2000,
  };
  if (options.servername) channelOptions['grpc.ssl_target_name_override'] = options.servername;
  if (!tls) return {address, credentials: grpcCredentials.createInsecure(), channelOptions, tls, gateway};
  const read = async (file: string | undefined, what: string) => {
    if (!file) return null;
    try {
      return await readFile(file);
    } catch (error) {
      throw usageError(`Cannot read the ${what} ${file}: ${errorMessage(error)}`);
    }
  };
  const [ca, cert, key] = await Promise.all([
    read(options.cacert, 'CA certificate'),
    read(options.cert, 'client certificate'),
    read(options.key, 'client key'),
  ]);
  if (Boolean(cert) !== Boolean(key)) throw usageError('--cert and --key go together.');
  return {
    address,
    credentials: grpcCredentials.createSsl(
      ca,
      key,
      cert,
      options.insecure ? {checkServerIdentity: () => undefined, rejectUnauthorized: false} : {},
    ),
    channelOptions,
    tls,
    gateway,
    verify: {ca, servername: options.servername, insecure: Boolean(options.insecure)},
  };
}

/**
 * Waits until the channel is connected, failing fast with what went wrong: nothing listening, or
 * something listening that does not speak this kind of connection (TLS against plaintext, or the
 * reverse), instead of hanging until a deadline says only "context deadline exceeded".
 */
export async function connect(client: Client, target: Target, timeoutMs: number): Promise<void> {
  const channel = client.getChannel();
  const deadline = Date.now() + timeoutMs;
  let state = channel.getConnectivityState(true);
  const failedBefore = state === connectivityState.TRANSIENT_FAILURE;
  while (state !== connectivityState.READY) {
    if (state === connectivityState.TRANSIENT_FAILURE) {
      const failure = await explainFailure(target, failedBefore);
      if (failure) throw failure;
    }
    if (Date.now() >= deadline) break;
    const changed = await new Promise<boolean>((resolve) =>
      channel.watchConnectivityState(state, deadline, (error) => resolve(!error)),
    );
    if (!changed) break;
    state = channel.getConnectivityState(true);
  }
  if (state !== connectivityState.READY) {
    throw new TacosError(`Could not connect to ${target.address} within ${timeoutMs / 1000} s.`, {
      hint: 'Is the server (tacos up?) running there? --connect-timeout waits longer.',
      code: 'CONNECT_FAILED',
    });
  }
}

/**
 * Why the channel failed; or undefined when it had failed before this wait began and something
 * answers now: a server restarted there, which the channel is connecting to again.
 */
async function explainFailure(target: Target, failedBefore: boolean): Promise<TacosError | undefined> {
  const endpoint = endpointOf(target.address);
  if (!endpoint || !(await socketOpen(endpoint))) {
    const stackEnv = await target.gateway?.stackWithoutGrpc();
    if (stackEnv) {
      return new TacosError(
        `Nothing answers at ${target.address}: the stack \`tacos up\` runs (env ${stackEnv}) has gRPC off.`,
        {
          hint: `Turn it on with \`tacos env switch grpc --env ${stackEnv}\` (or GRPC_ENABLED=true in .env.${stackEnv}), then restart the stack: \`tacos down\`, \`tacos up\`.`,
          code: 'CONNECT_FAILED',
        },
      );
    }
    return new TacosError(`Nothing answers at ${target.address}.`, {
      hint: 'Is `tacos up` running? Or give --addr HOST:PORT.',
      code: 'CONNECT_FAILED',
    });
  }
  if (failedBefore) return undefined;
  if (target.tls && 'host' in endpoint) {
    const problem = await certificateProblem(endpoint.host, endpoint.port, target);
    if (problem) {
      return new TacosError(`The certificate of ${target.address} is not trusted: ${problem}.`, {
        hint: 'Give its CA with --cacert FILE (and --servername NAME if it names another host), or skip verification with --insecure.',
        code: 'CONNECT_FAILED',
      });
    }
  } else if (await speaksHttp1(endpoint)) {
    return new TacosError(
      `${target.address} answers HTTP/1.1, not gRPC: it is an HTTP server (the gateway's REST port, say).`,
      {
        hint: "Give the gRPC port with --addr: the gateway's is GRPC_PORT (9090, with GRPC_ENABLED=true).",
        code: 'CONNECT_FAILED',
      },
    );
  }
  return new TacosError(
    `${target.address} accepts connections but not ${target.tls ? 'TLS' : 'plaintext'} gRPC: it probably speaks ${target.tls ? 'plaintext' : 'TLS'}.`,
    {
      hint: target.tls ? 'Try --plaintext.' : 'Try --tls (and --insecure for a self-signed certificate).',
      code: 'CONNECT_FAILED',
    },
  );
}

/** Where to connect for `host:port` or `unix:PATH` (grpc-js's unix: form), as node:net takes it. */
function endpointOf(address: string): {host: string; port: number} | {path: string} | undefined {
  if (address.startsWith('unix:')) return {path: address.slice('unix:'.length).replace(/^\/\/(?=\/)/, '')};
  const match = /^(.*):(\d+)$/.exec(address);
  return match ? {host: match[1].replace(/^\[|\]$/g, ''), port: Number(match[2])} : undefined;
}

/** Whether the server answers the HTTP/2 connection preface as an HTTP/1.x server does (with a status line). */
function speaksHttp1(endpoint: NetConnectOpts): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect(endpoint);
    let answer = '';
    const done = () => {
      socket.destroy();
      resolve(answer.startsWith('HTTP/1.'));
    };
    socket.setTimeout(1000, done);
    socket.once('error', done);
    socket.once('close', done);
    socket.once('connect', () => socket.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'));
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString('latin1');
      if (answer.length >= 8) done();
    });
  });
}

/** A TLS handshake of our own: the verification error, if the server speaks TLS but its certificate is refused. */
function certificateProblem(host: string, port: number, target: Target): Promise<string | undefined> {
  return new Promise((resolve) => {
    const servername = target.verify?.servername ?? (isIP(host) ? undefined : host);
    const socket = tlsConnect({
      host,
      port,
      servername,
      ca: target.verify?.ca ?? undefined,
      rejectUnauthorized: false,
      ALPNProtocols: ['h2'],
    });
    const done = (problem?: string) => {
      socket.destroy();
      resolve(problem);
    };
    socket.setTimeout(2000, () => done());
    socket.once('error', () => done());
    socket.once('secureConnect', () => {
      if (target.verify?.insecure) return done();
      const error = socket.authorizationError ?? (servername ? undefined : undefined);
      done(error ? String(error.message ?? error) : undefined);
    });
  });
}
