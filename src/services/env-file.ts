import {readFileSync} from 'node:fs';
import path from 'node:path';
import {parseEnvDocument, valuesOf} from './env-document.js';
import {TacosError} from './errors.js';

/* An environment's file: its name, where it is, and how the running stack reads it. */

/** What an environment may be called: it becomes part of a file name. */
export const ENV_NAME = /^[A-Za-z0-9_-]+$/;

/** `.env.<name>`: the file of an environment. */
export function envFileName(name: string): string {
  return `.env.${name}`;
}

export function envFilePath(projectDir: string, name: string): string {
  return path.join(projectDir, envFileName(name));
}

/**
 * The values of an environment's file, parsed as `tacos env` parses it (dotenv's rules, strictly: a
 * line dotenv would skip is an error naming it), or undefined when the file is missing and `optional`.
 */
export function readEnvValues(
  projectDir: string,
  name: string,
  options: {optional: boolean},
): Record<string, string> | undefined {
  const file = envFilePath(projectDir, name);
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    if (missing && options.optional) return undefined;
    throw envFileReadError(file, name, error as NodeJS.ErrnoException);
  }
  return valuesOf(parseEnvDocument(bytes, file));
}

export function envFileReadError(file: string, name: string, error: NodeJS.ErrnoException): TacosError {
  const missing = error.code === 'ENOENT';
  return new TacosError(missing ? `No env file for environment "${name}" (${file}).` : `Cannot read ${file}.`, {
    hint: missing
      ? 'Create it with `tacos env init`, or pick another environment with --env (see `tacos env list`).'
      : undefined,
    code: 'ENV_FILE',
    cause: error,
  });
}
