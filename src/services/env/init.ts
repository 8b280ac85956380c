import {readFile, writeFile} from 'node:fs/promises';
import path from 'node:path';
import {PACKAGE_ROOT} from '../paths.js';
import {envFilePath} from '../env-file.js';

export const INIT_ENVIRONMENTS = ['local', 'dev', 'staging', 'prod'] as const;
export const ENV_TEMPLATES_DIR = path.join(PACKAGE_ROOT, 'templates', 'env');

export interface InitResult {
  name: string;
  file: string;
  status: 'created' | 'kept';
}

/** `tacos env init`: creates `.env.local`, `.env.dev`, `.env.staging` and `.env.prod` from templates/env/; never overwrites. */
export async function initEnvironments(projectDir: string, templatesDir = ENV_TEMPLATES_DIR): Promise<InitResult[]> {
  const results: InitResult[] = [];
  for (const name of INIT_ENVIRONMENTS) {
    const file = envFilePath(projectDir, name);
    const template = await readFile(path.join(templatesDir, `${name}.env`), 'utf8');
    try {
      await writeFile(file, template, {flag: 'wx'}); // fails when the file exists: never overwritten
      results.push({name, file, status: 'created'});
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      results.push({name, file, status: 'kept'});
    }
  }
  return results;
}
