import {EnvReader} from '../config.js';
import {TacosError, errorMessage} from '../errors.js';
import {MASK, isSecretKey, listEnvironmentNames, locateEnvFile, readEnvFile, readEnvLimits} from './files.js';

/** The keys `tacos env list` shows, each with the check the gateway applies to it. */
export const LISTED_KEYS: Array<{key: string; check?: (read: EnvReader) => unknown}> = [
  {key: 'SERVER_ENVIRONMENT'},
  {key: 'GRPC_ENABLED', check: (read) => read.bool('GRPC_ENABLED', false)},
  {key: 'GRPC_PORT', check: (read) => read.port('GRPC_PORT', 9090)},
  {key: 'GRPC_TRAFFIC_PERCENT', check: (read) => read.int('GRPC_TRAFFIC_PERCENT', 100, 0, 100)},
  {key: 'BACKEND_RESERVATION_GRPC_ADDRESS', check: (read) => hostPort(read, 'BACKEND_RESERVATION_GRPC_ADDRESS')},
  {key: 'BACKEND_PAYMENT_GRPC_ADDRESS', check: (read) => hostPort(read, 'BACKEND_PAYMENT_GRPC_ADDRESS')},
  {
    key: 'BACKEND_RESERVATION_API_BASE_URL',
    check: (read) => read.url('BACKEND_RESERVATION_API_BASE_URL', 'http://localhost:8010'),
  },
  {
    key: 'BACKEND_PAYMENT_API_BASE_URL',
    check: (read) => read.url('BACKEND_PAYMENT_API_BASE_URL', 'http://localhost:8030'),
  },
  {key: 'JWT_SECRET'},
];

function hostPort(read: EnvReader, key: string): void {
  const value = read.optional(key);
  if (value === undefined) return;
  const match = /^(.+):(\d+)$/.exec(value);
  if (!match || Number(match[2]) > 65_535) throw new Error(`${key}=${value} is not valid: expected host:port.`);
}

export interface EnvListing {
  name: string;
  file: string;
  production: boolean;
  /** The listed keys; null when not set; secret-looking keys masked. */
  values: Record<string, string | null>;
  problems: Array<{key: string; message: string}>;
}

/**
 * `tacos env list`: the listed keys of every environment, invalid values flagged. Files that cannot
 * be parsed are returned apart, so the rest is still shown.
 */
export async function listEnvironments(
  projectDir: string,
): Promise<{environments: EnvListing[]; unreadable: TacosError[]}> {
  const environments: EnvListing[] = [];
  const unreadable: TacosError[] = [];
  const {maxBytes} = readEnvLimits();
  for (const name of await listEnvironmentNames(projectDir)) {
    let env;
    try {
      // Reading through a link is harmless: list names no target and writes nothing.
      env = await readEnvFile(await locateEnvFile(projectDir, name, {followLinks: true}), maxBytes);
    } catch (error) {
      if (error instanceof TacosError) {
        unreadable.push(error);
        continue;
      }
      throw error;
    }
    const read = new EnvReader(env.values);
    const values: Record<string, string | null> = {};
    const problems: EnvListing['problems'] = [];
    for (const {key, check} of LISTED_KEYS) {
      const value = env.values[key];
      values[key] = value === undefined ? null : isSecretKey(key) && value !== '' ? MASK : value;
      try {
        check?.(read);
      } catch (error) {
        // The messages name the key and value; a secret-looking key is never checked here.
        problems.push({key, message: errorMessage(error)});
      }
    }
    environments.push({name, file: env.file, production: env.production, values, problems});
  }
  return {environments, unreadable};
}
