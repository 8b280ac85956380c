import {ENV_NAME, readEnvValues} from './env-file.js';
import {TacosError, usageError} from './errors.js';

export type Environment = Record<string, string | undefined>;

export interface LoadEnvironmentOptions {
  /** The environment name: its env file (`.env.<name>`) in the project dir. */
  envName?: string;
  projectDir?: string;
  processEnv?: Environment;
}

export const DEFAULT_ENV_NAME = 'local';

/**
 * The active environment: the env file of that environment read with dotenv, overlaid by the
 * process environment (README, "Environment variables"). The default `.env.local` may be missing; a named one may not.
 */
export function loadEnvironment(options: LoadEnvironmentOptions = {}): Environment {
  const envName = options.envName ?? DEFAULT_ENV_NAME;
  if (!ENV_NAME.test(envName)) {
    throw usageError(`"${envName}" is not an environment name.`, 'Use a name like local, dev, staging or prod.');
  }
  const fromFile =
    readEnvValues(options.projectDir ?? process.cwd(), envName, {optional: options.envName === undefined}) ?? {};
  // README, "Environment variables": the `local` environment (so `tacos up` with no env file too) serves gRPC unless told otherwise.
  const defaults: Environment = envName === DEFAULT_ENV_NAME ? {GRPC_ENABLED: 'true'} : {};
  return {...defaults, ...fromFile, ...(options.processEnv ?? process.env)};
}

/** Typed reads of environment variables; every error names the variable and what it takes. */
export class EnvReader {
  constructor(private readonly env: Environment) {}

  string(name: string, fallback: string): string {
    const value = this.raw(name);
    return value === undefined ? fallback : value;
  }

  optional(name: string): string | undefined {
    return this.raw(name);
  }

  /** The first of several names that is set (aliases), else the fallback. */
  oneOf(names: string[], fallback: string): string {
    for (const name of names) {
      const value = this.raw(name);
      if (value !== undefined) return value;
    }
    return fallback;
  }

  /** An http(s) URL. */
  url(name: string, fallback: string): URL {
    const value = this.raw(name) ?? fallback;
    try {
      const url = new URL(value);
      if (url.protocol === 'http:' || url.protocol === 'https:') return url;
    } catch {
      // Reported below.
    }
    throw invalid(name, value, 'an http:// or https:// URL');
  }

  bool(name: string, fallback: boolean): boolean {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    const normal = value.toLowerCase();
    if (['true', '1', 'yes', 'on'].includes(normal)) return true;
    if (['false', '0', 'no', 'off'].includes(normal)) return false;
    throw invalid(name, value, 'true or false');
  }

  int(name: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    const parsed = Number(value);
    if (!/^-?\d+$/.test(value) || parsed < min || parsed > max) {
      throw invalid(name, value, `a whole number from ${min} to ${max}`);
    }
    return parsed;
  }

  number(name: string, fallback: number, min = 0): number {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    const parsed = Number(value);
    if (!Number.isFinite(parsed) || parsed < min) throw invalid(name, value, `a number of at least ${min}`);
    return parsed;
  }

  port(name: string, fallback: number): number {
    return this.int(name, fallback, 0, 65_535);
  }

  /** A duration in milliseconds: `600ms`, `2s`, `5m`, `1h`, or a bare number of milliseconds. */
  durationMs(name: string, fallback: number, minMs = 0): number {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    const parsed = parseDurationMs(value);
    if (parsed === undefined || parsed < minMs)
      throw invalid(name, value, `a duration such as 600ms, 2s or 5m${minMs > 0 ? `, at least ${minMs}ms` : ''}`);
    return parsed;
  }

  /** A comma-separated list; each item must pass `valid` (described by `expected`). */
  list(name: string, fallback: string[], valid: (item: string) => boolean, expected: string): string[] {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    const items = value
      .split(',')
      .map((item) => item.trim())
      .filter(Boolean);
    const bad = items.find((item) => !valid(item));
    if (bad !== undefined) throw invalid(name, value, `${expected} (not "${bad}")`);
    return items;
  }

  oneOfValues<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    const match = allowed.find((candidate) => candidate === value.toLowerCase());
    if (!match) throw invalid(name, value, allowed.join(', '));
    return match;
  }

  private raw(name: string): string | undefined {
    const value = this.env[name]?.trim();
    return value === undefined || value === '' ? undefined : value;
  }
}

const DURATION_UNITS_MS: Record<string, number> = {ms: 1, s: 1000, m: 60_000, h: 3_600_000};

export function parseDurationMs(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!match) return undefined;
  return Math.round(Number(match[1]) * DURATION_UNITS_MS[match[2] ?? 'ms']);
}

/** `24h`, `90m`, `45s`: the largest unit that divides the duration, as parseDurationMs reads it. */
export function formatSeconds(seconds: number): string {
  if (seconds >= 3600 && seconds % 3600 === 0) return `${seconds / 3600}h`;
  if (seconds >= 60 && seconds % 60 === 0) return `${seconds / 60}m`;
  return `${seconds}s`;
}

function invalid(name: string, value: string, expected: string): TacosError {
  return new TacosError(`${name}=${value} is not valid: expected ${expected}.`, {
    hint: `Fix ${name} in the env file or the environment.`,
    code: 'INVALID_CONFIG',
  });
}
