import dotenv from 'dotenv';
import {TacosError, usageError} from '../errors.js';
import {unifiedDiff} from './diff.js';
import {parseEnvDocument, setValues, type EnvDocument} from './document.js';
import {MASK, isSecretKey, readEnvFile, selectEnvironments, type EnvFile} from './files.js';
import path from 'node:path';
import {backupFile, commitWrite, discardWrite, prepareWrite, type PreparedWrite} from './write.js';

export type Transport = 'grpc' | 'http';

export interface SwitchOptions {
  transport: Transport;
  projectDir: string;
  /** Comma-separated names; default `local`. */
  env?: string;
  all?: boolean;
  /** GRPC_TRAFFIC_PERCENT to set (0..100). */
  percent?: number;
  dryRun?: boolean;
  /** Production files need no confirmation. */
  yes?: boolean;
  backup?: boolean;
  /** Asks the user; undefined when there is no terminal to ask on. */
  confirm?: (question: string) => Promise<boolean>;
}

export interface SwitchFileResult {
  name: string;
  file: string;
  production: boolean;
  /** What was (or, with --dry-run, would be) set. */
  changes: Record<string, string>;
  status: 'changed' | 'unchanged' | 'would-change';
  /** The unified diff of the change, secrets masked ('' when unchanged). */
  diff: string;
  backup?: string;
  warnings: string[];
}

const TRUE_WORDS = ['true', '1', 'yes', 'on'];
const FALSE_WORDS = ['false', '0', 'no', 'off'];

interface Plan {
  env: EnvFile;
  changes: Record<string, string>;
  next: string;
  warnings: string[];
}

/**
 * `tacos env switch`: sets GRPC_ENABLED (and GRPC_TRAFFIC_PERCENT) in each picked env file, editing
 * only those values. Every file is read, parsed and checked, and production confirmed, before any
 * file is written; a file that already says so is not rewritten.
 */
export async function switchEnvironments(options: SwitchOptions): Promise<SwitchFileResult[]> {
  if (options.percent !== undefined && (!Number.isInteger(options.percent) || options.percent < 0 || options.percent > 100)) {
    throw usageError(`--percent ${options.percent} is not a whole number from 0 to 100.`);
  }
  const names = await selectEnvironments(options.projectDir, options);
  const envs: EnvFile[] = [];
  for (const name of names) envs.push(await readEnvFile(options.projectDir, name));
  const plans = envs.map((env) => plan(env, options));

  const production = plans.filter((candidate) => candidate.env.production && candidate.next !== candidate.env.text);
  if (!options.dryRun && !options.yes && production.length > 0) {
    const list = production.map((candidate) => `.env.${candidate.env.name}`).join(', ');
    const question = `Switch production (${list}) to ${options.transport}?`;
    if (!options.confirm) {
      throw usageError(`${list} is production; switching it needs a confirmation and there is no terminal to ask on. Nothing was changed.`, 'Pass --yes to confirm.');
    }
    if (!(await options.confirm(question))) throw new TacosError('Not confirmed: nothing was changed.', {code: 'CANCELLED'});
  }

  const results: SwitchFileResult[] = [];
  const writes: PreparedWrite[] = [];
  for (const {env, changes, next, warnings} of plans) {
    const changed = next !== env.text;
    const result: SwitchFileResult = {
      name: env.name,
      file: env.file,
      production: env.production,
      changes,
      status: changed ? (options.dryRun ? 'would-change' : 'changed') : 'unchanged',
      diff: changed ? unifiedDiff(maskSecrets(env.document), maskSecrets(parseEnvDocument(next, `.env.${env.name}`)), `.env.${env.name}`) : '',
      warnings,
    };
    if (changed && !options.dryRun) {
      // Every new file is written beside its target first; only then are they renamed into place,
      // so a failure (a full disk, a read-only file) changes nothing.
      try {
        if (options.backup) result.backup = await backupFile(env.file);
        writes.push(await prepareWrite(env.file, env.text, next));
      } catch (error) {
        await Promise.all(writes.map(discardWrite));
        throw error;
      }
    }
    results.push(result);
  }
  for (const [index, write] of writes.entries()) {
    try {
      await commitWrite(write);
    } catch (error) {
      await Promise.all(writes.slice(index + 1).map(discardWrite));
      const done = writes.slice(0, index).map((done) => path.basename(done.target));
      if (done.length && error instanceof TacosError) throw new TacosError(`${error.message} Already switched: ${done.join(', ')}.`, {hint: error.hint, code: error.code});
      throw error;
    }
  }
  return results;
}

function plan(env: EnvFile, options: SwitchOptions): Plan {
  const wanted: Record<string, string> = {GRPC_ENABLED: options.transport === 'grpc' ? 'true' : 'false'};
  if (options.percent !== undefined) wanted.GRPC_TRAFFIC_PERCENT = String(options.percent);
  const label = `.env.${env.name}`;
  const warnings: string[] = [];
  const changes: Record<string, string> = {};
  for (const [key, value] of Object.entries(wanted)) {
    const entries = env.document.entries.filter((entry) => entry.key === key);
    if (entries.length > 1) {
      warnings.push(`${key} appears ${entries.length} times in ${label} (lines ${entries.map((entry) => entry.line).join(', ')}); all are set to ${value}.`);
    }
    // A value that already means the same (GRPC_ENABLED=1 for grpc) is left as it is.
    const already = entries.length > 0 && entries.every((entry) => equivalent(key, entry.raw, value));
    if (!already) changes[key] = value;
  }
  const next = setValues(env.document, changes);
  // The result must read, with dotenv, exactly as before but for the intended keys.
  const before = dotenv.parse(env.document.body);
  const after = dotenv.parse(next.slice(env.document.bom.length));
  const expected = {...before, ...changes};
  const keys = new Set([...Object.keys(expected), ...Object.keys(after)]);
  for (const key of keys) {
    if (expected[key] !== after[key]) {
      throw new TacosError(`Editing ${label} would change ${key} unexpectedly; nothing was changed.`, {hint: 'Please report this with a copy of the file (secrets removed).', code: 'ENV_EDIT'});
    }
  }
  return {env, changes, next, warnings};
}

function equivalent(key: string, raw: string, wanted: string): boolean {
  const value = raw.trim().toLowerCase();
  if (key === 'GRPC_ENABLED') return (wanted === 'true' ? TRUE_WORDS : FALSE_WORDS).includes(value);
  return value === wanted;
}

const SWITCHED_KEYS = new Set(['GRPC_ENABLED', 'GRPC_TRAFFIC_PERCENT']);

/** The document's text with every value but the switched keys' masked, line for line. */
export function maskSecrets(document: EnvDocument): string {
  let body = document.body;
  // Only the keys a switch changes are shown: any other value (a password in a URL ...) is masked.
  const secrets = document.entries.filter((entry) => !SWITCHED_KEYS.has(entry.key) && entry.raw !== '').sort((a, b) => b.valueStart - a.valueStart);
  for (const entry of secrets) {
    const masked = entry.raw.replace(/[^\r\n]+/g, MASK);
    body = body.slice(0, entry.valueStart) + masked + body.slice(entry.valueEnd);
  }
  return body;
}
