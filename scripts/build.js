// Build: TypeScript to dist/, then the compiled contracts (dist/contracts.binpb) with buf.
// Runs on `npm ci` (prepare), so a fresh clone is ready for `npx tacos`.
import {execFileSync} from 'node:child_process';
import {rmSync} from 'node:fs';
import {createRequire} from 'node:module';
import path from 'node:path';
import {fileURLToPath} from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const require = createRequire(import.meta.url);

rmSync(path.join(root, 'dist'), {recursive: true, force: true});
rmSync(path.join(root, 'oclif.manifest.json'), {force: true});
execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.json')], {stdio: 'inherit', cwd: root});
const {compileContracts} = await import(path.join(root, 'dist/services/grpc/contracts.js'));
await compileContracts(path.join(root, 'dist', 'contracts.binpb'));
// The command manifest: oclif then loads only the command that runs, not every command's imports.
execFileSync(process.execPath, [require.resolve('oclif/bin/run.js'), 'manifest'], {stdio: 'ignore', cwd: root});
