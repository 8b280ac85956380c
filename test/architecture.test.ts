/**
 * The layers of ARCHITECTURE.md, kept: every relative import in src/ (static, dynamic, `import type`,
 * `export from`, as TypeScript itself reads them) runs downward, never sideways between two areas of
 * one layer, never up. So the gRPC client kit and the server kit never import each other, services
 * never import commands/ or cli/, and shared code lives on the floor both reach.
 */
import {readFileSync, readdirSync} from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import {describe, expect, it} from 'vitest';

const SRC = path.join(import.meta.dirname, '..', 'src');

/** Top first. An area is a folder of src/ or src/services/; FLOOR is the files directly in src/services/. */
const FLOOR = 'services/*.ts';
const LAYERS: string[][] = [
  ['commands'],
  ['cli'],
  ['services/stack', 'services/bench', 'services/codegen', 'services/env', 'services/rollout', 'services/repl'],
  ['services/gateway', 'services/mocks'],
  ['services/backends'],
  ['services/grpc-client', 'services/server-kit'],
  ['services/redis'],
  [FLOOR, 'generated'],
];

function areaOf(file: string): string {
  const parts = path.relative(SRC, file).split(path.sep);
  if (parts[0] !== 'services') return parts[0];
  return parts.length === 2 ? FLOOR : `services/${parts[1]}`;
}

function layerOf(area: string): number {
  return LAYERS.findIndex((areas) => areas.includes(area));
}

interface Import {
  from: string;
  to: string;
}

function sourceFiles(): string[] {
  return readdirSync(SRC, {recursive: true, encoding: 'utf8'})
    .filter((file) => file.endsWith('.ts'))
    .map((file) => path.join(SRC, file));
}

/** The relative imports of src/, resolved to the .ts files they name. */
function relativeImports(): Import[] {
  return sourceFiles().flatMap((from) => {
    const {importedFiles} = ts.preProcessFile(readFileSync(from, 'utf8'), true, true);
    return importedFiles
      .filter(({fileName}) => fileName.startsWith('.'))
      .map(({fileName}) => ({from, to: path.resolve(path.dirname(from), fileName).replace(/\.js$/, '.ts')}));
  });
}

/** Why an import breaks the layers, or undefined when it runs downward (or stays in its area). */
function violation({from, to}: Import): string | undefined {
  const [fromArea, toArea] = [areaOf(from), areaOf(to)];
  if (fromArea === toArea) return undefined;
  const [fromLayer, toLayer] = [layerOf(fromArea), layerOf(toArea)];
  const where = `${path.relative(SRC, from)} imports ${path.relative(SRC, to)}`;
  if (fromLayer < 0 || toLayer < 0) return `${where}: ${fromLayer < 0 ? fromArea : toArea} has no layer`;
  if (fromLayer < toLayer) return undefined;
  if (fromLayer === toLayer) return `${where}: sideways (${fromArea} and ${toArea} share a layer)`;
  return `${where}: upward (${fromArea} is below ${toArea})`;
}

describe('architecture', () => {
  it('every area of src/ has its layer', () => {
    const unplaced = [...new Set(sourceFiles().map(areaOf))].filter((area) => layerOf(area) < 0);
    expect(unplaced, 'place new folders in LAYERS here and in ARCHITECTURE.md').toEqual([]);
  });

  it('imports run only downward: no kit imports the other, no service imports commands/ or cli/', () => {
    const imports = relativeImports();
    // The parse found the imports (a broken reader would pass every file).
    expect(imports.length).toBeGreaterThan(300);
    expect(imports.map(violation).filter(Boolean)).toEqual([]);
  });

  it('knows a broken arrow when it sees one', () => {
    const file = (name: string) => path.join(SRC, name);
    const broken = [
      {from: file('services/grpc-client/invoke.ts'), to: file('services/server-kit/grpc/interceptors.ts')},
      {from: file('services/server-kit/grpc/server.ts'), to: file('services/grpc-client/target.ts')},
      {from: file('services/grpc-client/schema-source.ts'), to: file('services/stack/state.ts')},
      {from: file('services/grpc-client/target.ts'), to: file('services/gateway/config.ts')},
      {from: file('services/bench/external-tool.ts'), to: file('services/stack/proc.ts')},
      {from: file('services/gateway/config.ts'), to: file('services/mocks/reservation/catalog.ts')},
      {from: file('services/gateway/booking.ts'), to: file('services/mocks/payment/settle-at-once.ts')},
      {from: file('services/stack/up.ts'), to: file('commands/up.ts')},
      {from: file('services/grpc-client/run-call.ts'), to: file('cli/grpc-flags.ts')},
      {from: file('services/errors.ts'), to: file('services/server-kit/api-errors.ts')},
    ];
    expect(broken.filter((arrow) => !violation(arrow))).toEqual([]);
  });
});
