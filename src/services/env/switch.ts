import path from 'node:path';
import dotenv from 'dotenv';
import {TacosError, usageError} from '../errors.js';
import {unifiedDiff} from './diff.js';
import {envFileName} from '../env-file.js';
import {applyEdits, decodeUtf8, valueEdits, type EnvDocument, type TextEdit} from '../env-document.js';
import {
  MASK,
  locateEnvFile,
  readEnvFile,
  readEnvLimits,
  selectEnvironments,
  type EnvFile,
  type EnvFileLocation,
  type EnvLimits,
} from './files.js';
import {lockEnvFiles, type EnvFileLocks} from './lock.js';
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
  /** Edit the file an env file links to; without it, a link is refused. */
  followLinks?: boolean;
  /** Default: from the process environment (readEnvLimits). */
  limits?: EnvLimits;
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
  edits: TextEdit[];
  next: Buffer;
  warnings: string[];
}

/**
 * `tacos env switch`: sets GRPC_ENABLED (and GRPC_TRAFFIC_PERCENT) in each picked env file, editing
 * only those values. The files are locked against other switches (not for a dry run), then every
 * file is read, parsed and checked, and production confirmed, before any file is written; a file
 * that already says so is not rewritten.
 */
export async function switchEnvironments(options: SwitchOptions): Promise<SwitchFileResult[]> {
  if (
    options.percent !== undefined &&
    (!Number.isInteger(options.percent) || options.percent < 0 || options.percent > 100)
  ) {
    throw usageError(`--percent ${options.percent} is not a whole number from 0 to 100.`);
  }
  const limits = options.limits ?? readEnvLimits();
  const names = await selectEnvironments(options.projectDir, options);
  const locations: EnvFileLocation[] = [];
  for (const name of names)
    locations.push(await locateEnvFile(options.projectDir, name, {followLinks: options.followLinks ?? false}));
  // Read under the lock: what another switch wrote is seen, so nothing it did is undone.
  const locks = options.dryRun
    ? undefined
    : await lockEnvFiles(
        locations.map((location) => location.target),
        limits.lockTimeoutMs,
      );
  try {
    return await switchFiles(locations, limits.maxBytes, options, locks);
  } finally {
    await locks?.release();
  }
}

async function switchFiles(
  locations: EnvFileLocation[],
  maxBytes: number,
  options: SwitchOptions,
  locks?: EnvFileLocks,
): Promise<SwitchFileResult[]> {
  const envs: EnvFile[] = [];
  for (const location of locations) envs.push(await readEnvFile(location, maxBytes));
  const plans = envs.map((env) => plan(env, options));

  const production = plans.filter((candidate) => candidate.env.production && candidate.edits.length > 0);
  if (!options.dryRun && !options.yes && production.length > 0) {
    const list = production.map((candidate) => envFileName(candidate.env.name)).join(', ');
    const question = `Switch production (${list}) to ${options.transport}?`;
    if (!options.confirm) {
      throw usageError(
        `${list} is production; switching it needs a confirmation and there is no terminal to ask on. Nothing was changed.`,
        'Pass --yes to confirm.',
      );
    }
    if (!(await options.confirm(question)))
      throw new TacosError('Not confirmed: nothing was changed.', {code: 'CANCELLED'});
  }

  const results: SwitchFileResult[] = [];
  const writes: PreparedWrite[] = [];
  for (const {env, changes, edits, next, warnings} of plans) {
    const changed = edits.length > 0;
    const result: SwitchFileResult = {
      name: env.name,
      file: env.file,
      production: env.production,
      changes,
      status: changed ? (options.dryRun ? 'would-change' : 'changed') : 'unchanged',
      diff: changed ? maskedDiff(env.document, edits, envFileName(env.name)) : '',
      warnings,
    };
    if (changed && !options.dryRun) {
      // Every new file is written beside its target first; only then are they renamed into place,
      // so a failure (a full disk, a read-only file) changes nothing.
      try {
        if (options.backup) result.backup = await backupFile(env.file, env.bytes);
        writes.push(await prepareWrite(env.target, env.bytes, next));
      } catch (error) {
        await Promise.all(writes.map(discardWrite));
        throw error;
      }
    }
    results.push(result);
  }
  for (const [index, write] of writes.entries()) {
    try {
      locks?.check();
      await commitWrite(write);
    } catch (error) {
      await Promise.all(writes.slice(index + 1).map(discardWrite));
      const done = writes.slice(0, index).map((done) => path.basename(done.target));
      if (done.length && error instanceof TacosError)
        throw new TacosError(`${error.message} Already switched: ${done.join(', ')}.`, {
          hint: error.hint,
          code: error.code,
        });
      throw error;
    }
  }
  return results;
}

function plan(env: EnvFile, options: SwitchOptions): Plan {
  const wanted: Record<string, string> = {GRPC_ENABLED: options.transport === 'grpc' ? 'true' : 'false'};
  if (options.percent !== undefined) wanted.GRPC_TRAFFIC_PERCENT = String(options.percent);
  const label = envFileName(env.name);
  const warnings: string[] = [];
  const changes: Record<string, string> = {};
  for (const [key, value] of Object.entries(wanted)) {
    const entries = env.document.entries.filter((entry) => entry.key === key);
    if (entries.length > 1) {
      warnings.push(
        `${key} appears ${entries.length} times in ${label} (lines ${entries.map((entry) => entry.line).join(', ')}); all are set to ${value}.`,
      );
    }
    // A value that already means the same (GRPC_ENABLED=1 for grpc) is left as it is.
    const already = entries.length > 0 && entries.every((entry) => equivalent(key, entry.raw, value));
    if (!already) changes[key] = value;
  }
  const edits = valueEdits(env.document, changes);
  const next = Buffer.from(env.document.bom + applyEdits(env.document.body, edits), 'latin1');
  // The result must read, with dotenv, exactly as before but for the intended keys.
  // env.values are what dotenv reads (parseEnvDocument checks it).
  const after = dotenv.parse(next.subarray(env.document.bom.length));
  const expected = {...env.values, ...changes};
  const keys = new Set([...Object.keys(expected), ...Object.keys(after)]);
  for (const key of keys) {
    if (expected[key] !== after[key]) {
      throw new TacosError(`Editing ${label} would change ${key} unexpectedly; nothing was changed.`, {
        hint: 'Please report this with a copy of the file (secrets removed).',
        code: 'ENV_EDIT',
      });
    }
  }
  return {env, changes, edits, next, warnings};
}

function equivalent(key: string, raw: string, wanted: string): boolean {
  const value = raw.trim().toLowerCase();
  if (key === 'GRPC_ENABLED') return (wanted === 'true' ? TRUE_WORDS : FALSE_WORDS).includes(value);
  return value === wanted;
}

const SWITCHED_KEYS = new Set(['GRPC_ENABLED', 'GRPC_TRAFFIC_PERCENT']);

/**
 * The diff of an edit as the user may see it: every value but the switched keys' masked (a password
 * in a URL ...), line for line, and the text decoded as UTF-8.
 */
function maskedDiff(document: EnvDocument, edits: TextEdit[], label: string): string {
  const masks = document.entries
    .filter((entry) => !SWITCHED_KEYS.has(entry.key) && entry.raw !== '')
    .map((entry) => ({start: entry.valueStart, end: entry.valueEnd, text: entry.raw.replace(/[^\r\n]+/g, MASK)}));
  // The masks and the edits change different values: mask, then move each edit by what the masks before it added.
  let shift = 0;
  let mask = 0;
  const moved = edits.map((edit) => {
    for (; mask < masks.length && masks[mask].start < edit.start; mask++)
      shift += masks[mask].text.length - (masks[mask].end - masks[mask].start);
    return {start: edit.start + shift, end: edit.end + shift, text: edit.text};
  });
  return decodeUtf8(unifiedDiff(applyEdits(document.body, masks), moved, label));
}
