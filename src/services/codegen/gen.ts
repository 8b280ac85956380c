import path from 'node:path';
import {TacosError} from '../errors.js';
import {PACKAGE_ROOT} from '../paths.js';
import {rm} from 'node:fs/promises';
import {
  DEFAULT_TEMPLATES_DIR,
  listTemplates,
  orphanedFiles,
  renderTemplate,
  staleFiles,
  writeGenerated,
} from './render.js';
import {buildModel} from './model.js';

export interface GenOptions {
  /** One template, or every template in the dir. */
  template?: string;
  outDir?: string;
  protoDir?: string;
  templatesDir?: string;
  mode: 'write' | 'dry-run' | 'check';
}

export interface GenResult {
  template: string;
  outDir: string;
  /** Every file the template makes, as paths under outDir. */
  files: string[];
  written: string[];
  unchanged: string[];
  /** Files this template generated before but no longer does, deleted. */
  removed: string[];
}

/**
 * `tacos gen`: renders templates over the model of proto/ and writes (atomically, only what
 * changed), lists (dry run), or checks that what is on disk is current (throws naming stale files).
 */
export async function gen(options: GenOptions): Promise<GenResult[]> {
  const templatesDir = options.templatesDir ?? DEFAULT_TEMPLATES_DIR;
  const protoDir = options.protoDir ?? path.join(PACKAGE_ROOT, 'proto');
  const names = options.template
    ? [options.template]
    : (await listTemplates(templatesDir)).map((template) => template.name);
  const model = buildModel(protoDir);
  const results: GenResult[] = [];
  const stale: string[] = [];
  for (const name of names) {
    const outDir = options.outDir && names.length > 1 ? path.join(options.outDir, name) : options.outDir;
    const rendered = await renderTemplate({template: name, templatesDir, protoDir, outDir}, model);
    const files = rendered.files.map((file) => path.join(rendered.outDir, file.path));
    const orphans = await orphanedFiles(rendered.outDir, name, rendered.files);
    if (options.mode === 'check')
      stale.push(
        ...(await staleFiles(rendered.outDir, rendered.files)),
        ...orphans.map((file) => `${file} (no longer generated)`),
      );
    const report =
      options.mode === 'write' ? await writeGenerated(rendered.outDir, rendered.files) : {written: [], unchanged: []};
    if (options.mode === 'write') await Promise.all(orphans.map((file) => rm(file)));
    results.push({
      template: name,
      outDir: rendered.outDir,
      files,
      ...report,
      removed: options.mode === 'write' ? orphans : [],
    });
  }
  if (stale.length > 0) {
    throw new TacosError(`Generated files are stale (or missing): ${stale.join(', ')}.`, {
      hint: 'Run `tacos gen` (with the same --template/--out) and commit the result.',
      code: 'GEN_STALE',
    });
  }
  return results;
}
