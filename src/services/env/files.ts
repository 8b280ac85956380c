import {constants} from 'node:fs';
import {lstat, open, readdir, readlink, realpath, type FileHandle} from 'node:fs/promises';
import path from 'node:path';
import {EnvReader, type Environment} from '../config.js';
import {ExitCode, TacosError, usageError} from '../errors.js';
import {parseEnvDocument, valuesOf, type EnvDocument} from '../env-document.js';
import {ENV_NAME, envFileName, envFileReadError, envFilePath} from '../env-file.js';

/** An environment: the file `.env.<name>` in the project dir. */
export interface EnvFile extends EnvFileLocation {
  /** The exact bytes as read. */
  bytes: Buffer;
  document: EnvDocument;
  values: Record<string, string>;
  production: boolean;
}

const FILE = /^\.env\.([A-Za-z0-9_-]+)$/;

/** The environments of a project: every `.env.<name>` but `.env.example`, sorted by name. */
export async function listEnvironmentNames(projectDir: string): Promise<string[]> {
  const names: string[] = [];
  for (const entry of await readdir(projectDir, {withFileTypes: true})) {
    const match = FILE.exec(entry.name);
    if (match && match[1] !== 'example' && (entry.isFile() || entry.isSymbolicLink())) names.push(match[1]);
  }
  return names.sort();
}

/** The names picked by `--env a,b` (checked), or every environment with `--all`, or `local`. */
export async function selectEnvironments(
  projectDir: string,
  options: {env?: string; all?: boolean},
): Promise<string[]> {
  if (options.all) {
    const names = await listEnvironmentNames(projectDir);
    if (names.length === 0)
      throw new TacosError(`No env files (.env.<name>) in ${projectDir}.`, {
        hint: 'Create them with `tacos env init`.',
        code: 'ENV_FILE',
      });
    return names;
  }
  const names = [
    ...new Set(
      (options.env ?? 'local')
        .split(',')
        .map((name) => name.trim())
        .filter(Boolean),
    ),
  ];
  if (names.length === 0) throw usageError('--env needs at least one environment name.');
  for (const name of names) {
    if (!ENV_NAME.test(name) || name === 'example')
      throw usageError(`"${name}" is not an environment name.`, 'Use names like local, dev, staging or prod.');
  }
  return names;
}

export interface EnvLimits {
  /** The largest env file read or edited (TACOS_ENV_FILE_MAX_BYTES). */
  maxBytes: number;
  /** How long a switch waits for another one editing the same file (TACOS_ENV_LOCK_TIMEOUT). */
  lockTimeoutMs: number;
}

const MIB = 1024 * 1024;

/** The env-file limits from the process environment; env files are a few KiB, so 1 MiB is generous. */
export function readEnvLimits(env: Environment = process.env): EnvLimits {
  const read = new EnvReader(env);
  return {
    maxBytes: read.int('TACOS_ENV_FILE_MAX_BYTES', MIB, 1),
    lockTimeoutMs: read.durationMs('TACOS_ENV_LOCK_TIMEOUT', 10_000),
  };
}

/** Where an environment's file is: `file` as named, `target` the file read and written (a link's target). */
export interface EnvFileLocation {
  name: string;
  file: string;
  target: string;
}

/**
 * Finds an environment's file. A symbolic link is named with where it points, and refused unless
 * `followLinks`: writing through a link edits a file elsewhere, which the user must ask for.
 */
export async function locateEnvFile(
  projectDir: string,
  name: string,
  options: {followLinks: boolean},
): Promise<EnvFileLocation> {
  const file = envFilePath(projectDir, name);
  const label = envFileName(name);
  const info = await lstat(file).catch((error: NodeJS.ErrnoException) => {
    throw envFileReadError(file, name, error);
  });
  if (!info.isSymbolicLink()) return {name, file, target: file};
  const pointsTo = await readlink(file);
  const target = await realpath(file).catch((error: NodeJS.ErrnoException) => {
    throw new TacosError(
      `${label} is a symbolic link to ${pointsTo}, which ${error.code === 'ENOENT' ? 'does not exist' : 'cannot be read'}.`,
      {code: 'ENV_LINK', cause: error},
    );
  });
  if (!options.followLinks) {
    throw new TacosError(
      `${label} is a symbolic link to ${pointsTo}${target === path.resolve(path.dirname(file), pointsTo) ? '' : ` (${target})`}: nothing was changed.`,
      {
        hint: `Pass --follow-links to edit ${target} (the link stays a link).`,
        exitCode: ExitCode.usage,
        code: 'ENV_LINK',
      },
    );
  }
  return {name, file, target};
}

/**
 * Reads and parses one env file, at most `maxBytes` of it (its size is checked before anything is
 * read); a file that cannot be parsed is an EnvParseError naming it and the line.
 */
export async function readEnvFile(location: EnvFileLocation, maxBytes: number): Promise<EnvFile> {
  const {name, file, target} = location;
  const label = envFileName(name);
  // O_NOFOLLOW: the target was resolved already, so a link here was put in since. O_NONBLOCK: a FIFO is refused, not waited on.
  const handle = await open(target, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch(
    (error: NodeJS.ErrnoException) => {
      throw envFileReadError(file, name, error);
    },
  );
  let bytes: Buffer;
  try {
    const info = await handle.stat();
    if (!info.isFile())
      throw new TacosError(`${label} is not a regular file: nothing was changed.`, {code: 'ENV_FILE'});
    if (info.size > maxBytes) throw tooLarge(label, info.size, maxBytes);
    bytes = await readAtMost(handle, maxBytes, () => tooLarge(label, maxBytes + 1, maxBytes));
  } finally {
    await handle.close();
  }
  const document = parseEnvDocument(bytes, label);
  const values = valuesOf(document);
  return {name, file, target, bytes, document, values, production: isProduction(name, values)};
}

/** Reads to the end, refusing (with `tooLarge`) past `maxBytes`: the file may grow while it is read. */
async function readAtMost(handle: FileHandle, maxBytes: number, tooLarge: () => Error): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for (;;) {
    const {bytesRead, buffer} = await handle.read({buffer: Buffer.allocUnsafe(64 * 1024)});
    if (bytesRead === 0) return Buffer.concat(chunks, total);
    total += bytesRead;
    if (total > maxBytes) throw tooLarge();
    chunks.push(buffer.subarray(0, bytesRead));
  }
}

function tooLarge(label: string, size: number, maxBytes: number): TacosError {
  return new TacosError(
    `${label} is ${formatSize(size)}, over the ${formatSize(maxBytes)} an env file may have: nothing was changed.`,
    {
      hint: 'An env file holds a few settings; check that this is the right file, or raise TACOS_ENV_FILE_MAX_BYTES.',
      code: 'ENV_TOO_LARGE',
    },
  );
}

function formatSize(bytes: number): string {
  if (bytes >= MIB) return `${(bytes / MIB).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${bytes} bytes`;
}

const PRODUCTION_WORD = /(^|[-_.])(prod|prd|production|live)([-_.]|$)/i;

/** Production, erring on the side of asking: its name says so (prod-us, prd, live ...), or an environment variable does. */
export function isProduction(name: string, values: Record<string, string>): boolean {
  if (PRODUCTION_WORD.test(name)) return true;
  return ['SERVER_ENVIRONMENT', 'NODE_ENV', 'APP_ENV', 'ENVIRONMENT'].some((key) =>
    PRODUCTION_WORD.test(values[key]?.trim() ?? ''),
  );
}

/** Keys whose values are never printed. */
export function isSecretKey(key: string): boolean {
  return /SECRET|PASSWORD|PASS|TOKEN|KEY|CREDENTIAL|DSN|AUTH|PRIVATE/i.test(key);
}

export const MASK = '****';
