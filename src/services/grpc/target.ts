import {readFile} from 'node:fs/promises';
import {connectivityState, credentials as grpcCredentials, type ChannelCredentials, type Client, type ChannelOptions} from '@grpc/grpc-js';
import {loadEnvironment} from '../config.js';
import {TacosError, errorMessage, usageError} from '../errors.js';
import {readGatewayConfig} from '../gateway/config.js';
import {tcpOpen} from '../stack/probes.js';

export interface TargetOptions {
  envName?: string;
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
}

const LOOPBACK = /^(localhost|127(\.\d+){3}|\[?::1\]?)$/;

/**
 * Where a call goes and how: the active environment's gateway (127.0.0.1:GRPC_PORT) unless told
 * otherwise; plaintext for loopback and unix sockets, TLS for anything else, as grpcurl users expect.
 */
export async function resolveTarget(options: TargetOptions): Promise<Target> {
  let address = options.address;
  if (!address && (options.host || options.port)) address = `${options.host ?? '127.0.0.1'}:${options.port ?? 9090}`;
  if (!address) address = `127.0.0.1:${readGatewayConfig(loadEnvironment({envName: options.envName})).grpcPort}`;
  const unix = address.startsWith('unix:');
  const host = unix ? '' : address.replace(/:\d+$/, '');
  if (!unix && !/:\d+$/.test(address)) throw usageError(`"${address}" is not host:port (or unix:PATH).`);
  if (options.tls && options.plaintext) throw usageError('--tls and --plaintext contradict each other.');
  const tls = options.tls || Boolean(options.insecure || options.cacert || options.cert) || (!options.plaintext && !unix && !LOOPBACK.test(host));
  const channelOptions: ChannelOptions = {'grpc.use_local_subchannel_pool': 1};
  if (options.servername) channelOptions['grpc.ssl_target_name_override'] = options.servername;
  if (!tls) return {address, credentials: grpcCredentials.createInsecure(), channelOptions, tls};
  const read = async (file: string | undefined, what: string) => {
    if (!file) return null;
    try {
      return await readFile(file);
    } catch (error) {
      throw usageError(`Cannot read the ${what} ${file}: ${errorMessage(error)}`);
    }
  };
  const [ca, cert, key] = await Promise.all([read(options.cacert, 'CA certificate'), read(options.cert, 'client certificate'), read(options.key, 'client key')]);
  if (Boolean(cert) !== Boolean(key)) throw usageError('--cert and --key go together.');
  return {
    address,
    credentials: grpcCredentials.createSsl(ca, key, cert, options.insecure ? {checkServerIdentity: () => undefined, rejectUnauthorized: false} : {}),
    channelOptions,
    tls,
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
  while (state !== connectivityState.READY) {
    if (state === connectivityState.TRANSIENT_FAILURE) throw await explainFailure(target);
    if (Date.now() >= deadline) break;
    const changed = await new Promise<boolean>((resolve) => channel.watchConnectivityState(state, deadline, (error) => resolve(!error)));
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

async function explainFailure(target: Target): Promise<TacosError> {
  const match = /^(.*):(\d+)$/.exec(target.address);
  const listening = match ? await tcpOpen(match[1].replace(/^\[|\]$/g, ''), Number(match[2])) : false;
  if (!listening) {
    return new TacosError(`Nothing answers at ${target.address}.`, {hint: 'Is `tacos up` running? Or give --addr HOST:PORT.', code: 'CONNECT_FAILED'});
  }
  return new TacosError(
    `${target.address} accepts connections but not ${target.tls ? 'TLS' : 'plaintext'} gRPC: it probably speaks ${target.tls ? 'plaintext' : 'TLS'}.`,
    {hint: target.tls ? 'Try --plaintext.' : 'Try --tls (and --insecure for a self-signed certificate).', code: 'CONNECT_FAILED'},
  );
}
