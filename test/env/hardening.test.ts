import {chmod, lstat, mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {afterEach, beforeEach, describe, expect, it} from 'vitest';
import {switchEnvironments} from '../../src/services/env/switch.js';
import {commitWrite, prepareWrite} from '../../src/services/env/write.js';

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tacos-env-hardening-'));
});

afterEach(async () => {
  await chmod(dir, 0o755).catch(() => undefined);
  await rm(dir, {recursive: true, force: true});
});

describe('env switch, where files are not plain', () => {
  it('with followLinks, edits the target of a symlinked env file and keeps the link', async () => {
    await mkdir(path.join(dir, 'shared'));
    await writeFile(path.join(dir, 'shared', 'local.env'), 'GRPC_ENABLED=false\n');
    await symlink(path.join('shared', 'local.env'), path.join(dir, '.env.local'));
    await switchEnvironments({transport: 'grpc', projectDir: dir, followLinks: true});
    expect((await lstat(path.join(dir, '.env.local'))).isSymbolicLink()).toBe(true);
    expect(await readFile(path.join(dir, 'shared', 'local.env'), 'utf8')).toBe('GRPC_ENABLED=true\n');
  });

  it('refuses a read-only file and changes nothing', async () => {
    await writeFile(path.join(dir, '.env.local'), 'GRPC_ENABLED=false\n');
    await chmod(path.join(dir, '.env.local'), 0o444);
    await expect(switchEnvironments({transport: 'grpc', projectDir: dir})).rejects.toThrow(/read-only/);
    expect(await readFile(path.join(dir, '.env.local'), 'utf8')).toBe('GRPC_ENABLED=false\n');
  });

  it('asks before switching anything that looks like production (names, NODE_ENV, APP_ENV)', async () => {
    for (const [name, text] of [
      ['prd', 'GRPC_ENABLED=false\n'],
      ['prod-us', 'GRPC_ENABLED=false\n'],
      ['live', 'GRPC_ENABLED=false\n'],
      ['eu', 'GRPC_ENABLED=false\nNODE_ENV=production\n'],
      ['apac', 'APP_ENV=prod\nGRPC_ENABLED=false\n'],
    ]) {
      await writeFile(path.join(dir, `.env.${name}`), text);
      await expect(switchEnvironments({transport: 'grpc', projectDir: dir, env: name}), name).rejects.toThrow(
        /production/,
      );
      expect(await readFile(path.join(dir, `.env.${name}`), 'utf8'), name).toBe(text);
    }
  });

  it('shows no value but the switched ones in a dry-run diff', async () => {
    await writeFile(
      path.join(dir, '.env.local'),
      'DATABASE_URL=postgres://app:hunter2@db/app\nGRPC_ENABLED=false\nREDIS_PASS=s3cr3t\n',
    );
    const [result] = await switchEnvironments({transport: 'grpc', projectDir: dir, dryRun: true});
    expect(result.diff).toContain('+GRPC_ENABLED=true');
    expect(result.diff).not.toMatch(/hunter2|s3cr3t/);
  });

  it('leaves a file that changed while it was being edited, and no temporary file behind', async () => {
    const file = path.join(dir, '.env.local');
    await writeFile(file, 'GRPC_ENABLED=false\n');
    const prepared = await prepareWrite(file, Buffer.from('GRPC_ENABLED=false\n'), Buffer.from('GRPC_ENABLED=true\n'));
    await writeFile(file, 'GRPC_ENABLED=false\n# edited meanwhile\n');
    await expect(commitWrite(prepared)).rejects.toThrow(/changed while/);
    expect(await readFile(file, 'utf8')).toBe('GRPC_ENABLED=false\n# edited meanwhile\n');
    expect((await readdir(dir)).filter((name) => name.endsWith('.tmp'))).toEqual([]);
  });

  it('changes no file when one of several cannot be written', async () => {
    await writeFile(path.join(dir, '.env.a'), 'GRPC_ENABLED=false\n');
    await writeFile(path.join(dir, '.env.b'), 'GRPC_ENABLED=false\n');
    await mkdir(path.join(dir, '.env.b.bak'));
    await expect(switchEnvironments({transport: 'grpc', projectDir: dir, all: true, backup: true})).rejects.toThrow(
      /Nothing was changed/,
    );
    expect(await readFile(path.join(dir, '.env.a'), 'utf8')).toBe('GRPC_ENABLED=false\n');
    expect(await readFile(path.join(dir, '.env.b'), 'utf8')).toBe('GRPC_ENABLED=false\n');
  });
});
