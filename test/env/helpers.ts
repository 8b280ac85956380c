import {copyFile, mkdtemp, readdir} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';

export const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');

/** A temporary project dir holding the fixtures picked, each as `.env.<fixture name>`. */
export async function projectWith(names?: string[]): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'tacos-env-'));
  const all = (await readdir(FIXTURES)).filter((file) => file.endsWith('.env')).map((file) => file.slice(0, -4));
  for (const name of names ?? all) await copyFile(path.join(FIXTURES, `${name}.env`), path.join(dir, `.env.${name}`));
  return dir;
}

/** `text` with each search string (which must occur exactly once) replaced: the expected bytes, computed without the parser. */
export function replaceExact(text: string, replacements: Array<[string, string]>): string {
  let result = text;
  for (const [search, replacement] of replacements) {
    const first = result.indexOf(search);
    if (first === -1 || result.indexOf(search, first + 1) !== -1)
      throw new Error(`"${search}" does not occur exactly once`);
    result = result.slice(0, first) + replacement + result.slice(first + search.length);
  }
  return result;
}
