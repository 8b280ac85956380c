import {createRequire} from 'node:module';
import {readdirSync} from 'node:fs';
import {mkdir, readdir, readFile, rename, stat} from 'node:fs/promises';
import path from 'node:path';
import {createFileRegistry, fromBinary, toBinary, type FileRegistry} from '@bufbuild/protobuf';
import {FileDescriptorProtoSchema, FileDescriptorSetSchema, type FileDescriptorProto} from '@bufbuild/protobuf/wkt';
import {TacosError, errorMessage} from './errors.js';
import {PACKAGE_ROOT} from './paths.js';

/**
 * The contracts as a real compiler sees them: `buf build` turns proto/ (and the vendored
 * third_party/ protos) into a FileDescriptorSet with original file names, dependencies, map
 * entries and comments. Servers load their handlers and their reflection answers from it.
 */
export interface ContractSet {
  /** The serialized FileDescriptorSet, as proto-loader's loadFileDescriptorSetFromBuffer takes it. */
  bytes: Uint8Array;
  files: FileDescriptorProto[];
  /** Each file serialized alone, in dependency order, as reflection serves them. */
  fileBytes: Uint8Array[];
  registry: FileRegistry;
}

const SOURCE_DIRS = ['proto', 'third_party'];
/** Where imports resolve: "proto/..." from the package root, standard protos from third_party/. */
export const CONTRACT_INCLUDE_DIRS = [PACKAGE_ROOT, path.join(PACKAGE_ROOT, 'third_party')];
const DESCRIPTOR_PATH = path.join(PACKAGE_ROOT, 'dist', 'contracts.binpb');

let cached: Promise<ContractSet> | undefined;

/** Loads the compiled contracts, compiling them first when proto/ changed since the last build. */
export function loadContractSet(): Promise<ContractSet> {
  cached ??= readContractSet().catch((error: unknown) => {
    cached = undefined;
    throw error;
  });
  return cached;
}

async function readContractSet(): Promise<ContractSet> {
  if (await isStale()) await compileContracts(DESCRIPTOR_PATH);
  const bytes = new Uint8Array(await readFile(DESCRIPTOR_PATH));
  const set = fromBinary(FileDescriptorSetSchema, bytes);
  return {
    bytes,
    files: set.file,
    fileBytes: set.file.map((file) => toBinary(FileDescriptorProtoSchema, file)),
    registry: createFileRegistry(set),
  };
}

async function isStale(): Promise<boolean> {
  const built = await stat(DESCRIPTOR_PATH).catch(() => undefined);
  if (!built) return true;
  for (const dir of SOURCE_DIRS) {
    for (const file of await listFiles(path.join(PACKAGE_ROOT, dir))) {
      if ((await stat(file)).mtimeMs > built.mtimeMs) return true;
    }
  }
  return false;
}

/** Every .proto file of the contracts, as import paths relative to its include dir. */
export function contractSourceFiles(): string[] {
  return SOURCE_DIRS.flatMap((dir) => {
    const root = path.join(PACKAGE_ROOT, dir);
    const base = dir === 'proto' ? PACKAGE_ROOT : root;
    return readdirSync(root, {recursive: true, encoding: 'utf8'})
      .filter((file) => file.endsWith('.proto'))
      .sort()
      .map((file) => path.relative(base, path.join(root, file)));
  });
}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, {withFileTypes: true, recursive: true}).catch(() => []);
  return entries.filter((entry) => entry.isFile()).map((entry) => path.join(entry.parentPath, entry.name));
}

/** Runs `buf build` into a temporary file and renames it into place, so readers never see half a set. */
export async function compileContracts(outFile: string): Promise<void> {
  const buf = createRequire(import.meta.url).resolve('@bufbuild/buf/bin/buf');
  const tmp = `${outFile}.${process.pid}.tmp`;
  await mkdir(path.dirname(outFile), {recursive: true});
  // Loaded here, not at the top: every command and server imports this module, few compile.
  const {execa} = await import('execa');
  try {
    await execa(process.execPath, [buf, 'build', '-o', tmp], {cwd: PACKAGE_ROOT});
  } catch (error) {
    const stderr = (error as {stderr?: string}).stderr?.trim();
    throw new TacosError(`The .proto files do not compile: ${stderr || errorMessage(error)}`, {
      hint: 'Fix the file and line named above, then run the command again (`npx buf lint` shows more).',
      code: 'PROTO_COMPILE_FAILED',
      cause: error,
    });
  }
  await rename(tmp, outFile);
}
