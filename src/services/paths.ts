import {existsSync} from 'node:fs';
import path from 'node:path';
import {fileURLToPath} from 'node:url';

/**
 * The tacos package root: the nearest folder above this module with a package.json. Found, not
 * fixed, because the built commands are bundled (dist/commands, dist/chunks) at other depths than
 * src/services/ under tsx.
 */
export const PACKAGE_ROOT = packageRootAbove(path.dirname(fileURLToPath(import.meta.url)));

function packageRootAbove(dir: string): string {
  for (let current = dir; ; current = path.dirname(current)) {
    if (existsSync(path.join(current, 'package.json'))) return current + path.sep;
    if (path.dirname(current) === current) throw new Error(`No package.json above ${dir}`);
  }
}

/** The state dir (the stack's state, logs, the client's schema cache): `.tacos/` in the project, or TACOS_STATE_DIR. */
export function stateDir(projectDir = process.cwd()): string {
  return process.env.TACOS_STATE_DIR ?? path.join(projectDir, '.tacos');
}
