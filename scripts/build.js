// Build: TypeScript and the compiled contracts (buf) into dist.next/, swapped in for dist/ at the
// end, so a tacos that runs while someone builds never sees half a dist/. Then the command manifest.
// Runs on `npm ci` (prepare), so a fresh clone is ready for `npx tacos`.
import {execFileSync} from 'node:child_process';
import {existsSync, readdirSync, readFileSync, renameSync, rmSync} from 'node:fs';
import {createRequire} from 'node:module';
import path from 'node:path';
import {fileURLToPath} from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const require = createRequire(import.meta.url);
const dist = path.join(root, 'dist');
const next = path.join(root, 'dist.next');
const old = path.join(root, 'dist.old');

rmSync(next, {recursive: true, force: true});
execFileSync(
  process.execPath,
  [require.resolve('typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.json'), '--outDir', next],
  {stdio: 'inherit', cwd: root},
);
await bundleLean(next);
await bundleCommands(next);
const {compileContracts} = await import(path.join(next, 'services/contracts.js'));
await compileContracts(path.join(next, 'contracts.binpb'));
rmSync(old, {recursive: true, force: true});
if (existsSync(dist)) renameSync(dist, old);
renameSync(next, dist);
rmSync(old, {recursive: true, force: true});
// The command manifest: oclif then loads only the command that runs, not every command's imports.
execFileSync(process.execPath, [require.resolve('oclif/bin/run.js'), 'manifest'], {stdio: 'ignore', cwd: root});

/**
 * The hot commands for bin/lean.js, in dist/lean/commands/ (bin/run.js sends a command there when it finds it
 * there): each with oclif's parser and error handler, grpc-js and @bufbuild/protobuf, in a few modules (no Config,
 * no plugins), so a warm `tacos call` starts about as fast as a plain grpc-js script. What loads only on demand
 * (prompts, the contracts' compiler) stays in node_modules.
 */
async function bundleLean(outdir) {
  const {build} = await import('esbuild');
  const {dependencies, devDependencies} = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
  const bundled = new Set(['@oclif/core', '@grpc/grpc-js', '@bufbuild/protobuf']);
  // devDependencies too: oclif requires typescript (6 MB) only to run a project's .ts sources, never here.
  const external = [...Object.keys(dependencies), ...Object.keys(devDependencies)]
    .filter((name) => !bundled.has(name))
    .flatMap((name) => [name, `${name}/*`]);
  await build({
    entryPoints: {
      'lean/run': path.join(root, 'bin', 'lean.js'),
      ...Object.fromEntries(
        ['call', 'list', 'describe'].map((id) => [`lean/commands/${id}`, path.join(outdir, 'commands', `${id}.js`)]),
      ),
    },
    outdir,
    chunkNames: 'lean/chunks/[name]-[hash]',
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    minifyWhitespace: true,
    minifySyntax: true,
    external,
    // The CommonJS packages bundled into ES modules require Node's own modules.
    banner: {
      js: "import {createRequire as leanRequire} from 'node:module'; const require = leanRequire(import.meta.url);",
    },
    logLevel: 'warning',
  });
}

/**
 * Each command becomes one ES module (shared code in dist/chunks/), with our code and the ESM-only
 * @bufbuild/protobuf inlined: Node loads a few large files much faster than 200 small ones, which is
 * most of a short command's start-up (`npm run bench:call`). Other packages stay external.
 */
async function bundleCommands(outdir) {
  const {build} = await import('esbuild');
  const {dependencies} = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
  const external = Object.keys(dependencies)
    .filter((name) => name !== '@bufbuild/protobuf')
    .flatMap((name) => [name, `${name}/*`]);
  await build({
    entryPoints: readdirSync(path.join(outdir, 'commands'), {recursive: true})
      .filter((file) => file.endsWith('.js'))
      .map((file) => path.join(outdir, 'commands', file)),
    outdir,
    outbase: outdir,
    entryNames: '[dir]/[name]',
    chunkNames: 'chunks/[name]-[hash]',
    allowOverwrite: true,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    sourcemap: true,
    minifyWhitespace: true,
    minifySyntax: true,
    external,
    logLevel: 'warning',
  });
}
