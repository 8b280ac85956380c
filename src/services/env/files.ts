import {readdir, readFile} from 'node:fs/promises';
import path from 'node:path';
import {TacosError, usageError} from '../errors.js';
import {parseEnvDocument, valuesOf, type EnvDocument} from './document.js';

/** An environment: the file `.env.<name>` in the project dir. */
export interface EnvFile {
  name: string;
  file: string;
  /** The exact bytes as read. */
  text: string;
  document: EnvDocument;
  values: Record<string, string>;
  production: boolean;
}

const NAME = /^[A-Za-z0-9_-]+$/;
const FILE = /^\.env\.([A-Za-z0-9_-]+)$/;

export function envFilePath(projectDir: string, name: string): string {
  return path.join(projectDir, `.env.${name}`);
}

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
export async function selectEnvironments(projectDir: string, options: {env?: string; all?: boolean}): Promise<string[]> {
  if (options.all) {
    const names = await listEnvironmentNames(projectDir);
    if (names.length === 0) throw new TacosError(`No env files (.env.<name>) in ${projectDir}.`, {hint: 'Create them with `tacos env init`.', code: 'ENV_FILE'});
    return names;
  }
  const names = [...new Set((options.env ?? 'local').split(',').map((name) => name.trim()).filter(Boolean))];
  if (names.length === 0) throw usageError('--env needs at least one environment name.');
  for (const name of names) {
    if (!NAME.test(name) || name === 'example') throw usageError(`"${name}" is not an environment name.`, 'Use names like local, dev, staging or prod.');
  }
  return names;
}

/** Reads and parses one env file; a file that cannot be parsed is an EnvParseError naming it and the line. */
export async function readEnvFile(projectDir: string, name: string): Promise<EnvFile> {
  const file = envFilePath(projectDir, name);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    throw new TacosError(missing ? `No env file for environment "${name}" (${file}).` : `Cannot read ${file}.`, {
      hint: missing ? 'Create it with `tacos env init`, or pick existing environments with --env (see `tacos env list`).' : undefined,
      code: 'ENV_FILE',
      cause: error,
    });
  }
  const document = parseEnvDocument(text, `.env.${name}`);
  const values = valuesOf(document);
  return {name, file, text, document, values, production: isProduction(name, values)};
}

const PRODUCTION_WORD = /(^|[-_.])(prod|prd|production|live)([-_.]|$)/i;

/** Production, erring on the side of asking: its name says so (prod-us, prd, live ...), or an environment variable does. */
export function isProduction(name: string, values: Record<string, string>): boolean {
  if (PRODUCTION_WORD.test(name)) return true;
  return ['SERVER_ENVIRONMENT', 'NODE_ENV', 'APP_ENV', 'ENVIRONMENT'].some((key) => PRODUCTION_WORD.test(values[key]?.trim() ?? ''));
}

/** Keys whose values are never printed. */
export function isSecretKey(key: string): boolean {
  return /SECRET|PASSWORD|PASS|TOKEN|KEY|CREDENTIAL|DSN|AUTH|PRIVATE/i.test(key);
}

export const MASK = '****';
