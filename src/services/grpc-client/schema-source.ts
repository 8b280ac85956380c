import {createHash} from 'node:crypto';
import {createRequire} from 'node:module';
import {existsSync} from 'node:fs';
import {readFile} from 'node:fs/promises';
import path from 'node:path';
import {fromBinary, toBinary} from '@bufbuild/protobuf';
import {FileDescriptorProtoSchema, FileDescriptorSetSchema, type FileDescriptorProto} from '@bufbuild/protobuf/wkt';
import type {Client} from '@grpc/grpc-js';
import {TacosError, errorMessage, usageError} from '../errors.js';
import {stateDir} from '../paths.js';
import {writeFileAtomically} from '../atomic-file.js';
import {metadataOf} from './invoke.js';
import {buildSchema, type Schema} from './schema.js';
import {connect, type Target} from './target.js';

export interface SchemaOptions {
  target: Target;
  /** The target's client: reflection goes over its channel. */
  client: Client;
  /** Headers sent with reflection requests (part of the cache key: they may change what is seen). */
  reflectHeaders: Array<[string, string]>;
  refresh: boolean;
  timeoutMs: number;
  connectTimeoutMs?: number;
  /** .proto files instead of reflection, with their import dirs. */
  protoFiles?: string[];
  importDirs?: string[];
}

interface CachedSchema {
  services: string[];
  files: string[];
  cachedAt: string;
}

/**
 * The schema of the target: from --proto files (protobufjs, no protoc), or through reflection with
 * the answer cached per target and reflection headers in .tacos/cache/, so a second call does not
 * ask again (--refresh asks anew).
 */
export async function loadSchema(options: SchemaOptions): Promise<Schema & {cachedAt?: string}> {
  if (options.protoFiles?.length)
    return buildSchema(await parseProtoFiles(options.protoFiles, options.importDirs ?? []));
  const cacheFile = path.join(stateDir(), 'cache', 'reflection', `${cacheKey(options)}.json`);
  if (!options.refresh) {
    const cached = await readFile(cacheFile, 'utf8').then(
      (text) => JSON.parse(text) as CachedSchema,
      () => undefined,
    );
    if (cached) {
      const schema = buildSchema(
        cached.files.map((file) => fromBinary(FileDescriptorProtoSchema, Buffer.from(file, 'base64'))),
        cached.services,
      );
      return {...schema, cachedAt: cached.cachedAt};
    }
  }
  // Fail fast and say why (nothing listening, TLS mismatch) before reflection says only UNAVAILABLE.
  await connect(options.client, options.target, options.connectTimeoutMs ?? 5000);
  const metadata = metadataOf(options.reflectHeaders);
  // Loaded only on a cache miss: the reflection client and its protos cost start-up time.
  const {reflect} = await import('./reflection-client.js');
  const reflected = await reflect({
    client: options.client,
    metadata,
    deadline: Date.now() + options.timeoutMs,
  }).catch((error: unknown) => {
    if (error instanceof TacosError) throw error;
    throw new TacosError(`Reflection failed at ${options.target.address}: ${errorMessage(error)}`, {
      hint: 'Give the schema with --proto FILE if the server has no reflection.',
      code: 'REFLECTION_FAILED',
    });
  });
  const schema = buildSchema(reflected.files, reflected.services);
  const cached: CachedSchema = {
    cachedAt: new Date().toISOString(),
    services: reflected.services,
    files: reflected.files.map((file) => Buffer.from(toBinary(FileDescriptorProtoSchema, file)).toString('base64')),
  };
  await writeFileAtomically(cacheFile, JSON.stringify(cached));
  return schema;
}

function cacheKey(options: SchemaOptions): string {
  const headers = [...options.reflectHeaders].sort(([a], [b]) => a.localeCompare(b));
  return createHash('sha256')
    .update(JSON.stringify([options.target.address, options.target.tls, headers]))
    .digest('hex')
    .slice(0, 32);
}

/** .proto files through protobufjs, as file descriptors (one per source file, imports resolved in the dirs). */
async function parseProtoFiles(files: string[], importDirs: string[]): Promise<FileDescriptorProto[]> {
  const require = createRequire(import.meta.url);
  const protobuf = require('protobufjs') as typeof import('protobufjs');
  const descriptor = require('protobufjs/ext/descriptor') as {
    FileDescriptorSet: {encode(message: unknown): {finish(): Uint8Array}};
  };
  const root = new protobuf.Root();
  const dirs = [...importDirs, process.cwd()];
  root.resolvePath = (origin, target) => {
    if (path.isAbsolute(target)) return target;
    for (const dir of [path.dirname(origin), ...dirs]) {
      const candidate = path.resolve(dir, target);
      if (existsSync(candidate)) return candidate;
    }
    return target;
  };
  for (const file of files) if (!existsSync(file)) throw usageError(`No such .proto file: ${file}`);
  try {
    root.loadSync(files, {keepCase: true, alternateCommentMode: true});
    root.resolveAll();
  } catch (error) {
    throw usageError(
      `The .proto files do not parse: ${errorMessage(error)}`,
      'Check the file named, and give the dirs of its imports with -I DIR.',
    );
  }
  const set = (root as unknown as {toDescriptor(syntax: string): unknown}).toDescriptor('proto3');
  return fromBinary(FileDescriptorSetSchema, descriptor.FileDescriptorSet.encode(set).finish()).file;
}
