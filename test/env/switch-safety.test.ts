import {lstat, mkdir, mkdtemp, readFile, readdir, rm, symlink, truncate, utimes, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import path from 'node:path';
import lockfile from 'proper-lockfile';
import {afterEach, beforeEach, describe, expect, it} from 'vitest';
import {switchEnvironments} from '../../src/services/env/switch.js';
import {runCli} from '../helpers/cli.js';

// Real `tacos env switch` runs (bin/run.js from dist/: `npm run build` first) on real files.
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tacos-env-safety-'));
});

afterEach(async () => {
  await rm(dir, {recursive: true, force: true});
});

const CLI_TIMEOUT_MS = 100_000;
/** Eight CLI processes at once on a shared machine: slow to start, however fast the switch. */
const CONCURRENT_TEST_TIMEOUT_MS = 150_000;
/** Generous under load: the runs below wait for each other, and none may give up. */
const WAIT_FOR_OTHERS = {TACOS_ENV_LOCK_TIMEOUT: '45s'};

const switchCli = (args: string[], env: Record<string, string> = {}) =>
  runCli(['env', 'switch', ...args], {cwd: dir, env, timeoutMs: CLI_TIMEOUT_MS});

/** A realistic file of `lines` lines: comments, plain and quoted values, GRPC_ENABLED=false about a third in. */
function bigEnvFile(lines: number): string {
  const out: string[] = [];
  for (let index = 0; index < lines - 1; index++) {
    if (index === Math.floor(lines / 3)) out.push('GRPC_ENABLED=false');
    else if (index % 10 === 0) out.push(`# section ${index}`);
    else if (index % 7 === 0) out.push(`SERVICE_${index}_PASSWORD="p@ss word ${index}"`);
    else out.push(`SERVICE_${index}_URL=http://service-${index}.internal:8080/path # inline`);
  }
  return `${out.join('\n')}\n`;
}

/** The names in the project dir that are neither env files nor backups: temporary or lock files left behind. */
async function leftovers(): Promise<string[]> {
  return (await readdir(dir)).filter((name) => /\.(tmp|lock)$/.test(name) || name.includes('.tmp'));
}

describe('env switch, with others at work on the same file', () => {
  it(
    'eight runs at once on one file: exactly one finds it to change, none fails, nothing is lost',
    async () => {
      const text = bigEnvFile(3000);
      await writeFile(path.join(dir, '.env.local'), text);
      const runs = await Promise.all(Array.from({length: 8}, () => switchCli(['grpc'], WAIT_FOR_OTHERS)));
      expect(
        runs.map((run) => run.code),
        runs.map((run) => run.stderr).join('\n'),
      ).toEqual(new Array(8).fill(0));
      const changed = runs.filter((run) => run.stdout.includes('.env.local: changed'));
      const already = runs.filter((run) => run.stdout.includes('.env.local: already grpc'));
      expect([changed.length, already.length]).toEqual([1, 7]);
      expect(await readFile(path.join(dir, '.env.local'), 'utf8')).toBe(
        text.replace('GRPC_ENABLED=false\n', 'GRPC_ENABLED=true\n'),
      );
      expect(await leftovers()).toEqual([]);
    },
    CONCURRENT_TEST_TIMEOUT_MS,
  );

  it(
    'eight runs setting different percents: each sees the one before it (one turns gRPC on), and the file holds one of them',
    async () => {
      const text = bigEnvFile(3000);
      await writeFile(path.join(dir, '.env.local'), text);
      const percents = [10, 20, 30, 40, 50, 60, 70, 80];
      const runs = await Promise.all(
        percents.map((percent) => switchCli(['grpc', '--percent', String(percent)], WAIT_FOR_OTHERS)),
      );
      expect(
        runs.map((run) => run.code),
        runs.map((run) => run.stderr).join('\n'),
      ).toEqual(new Array(8).fill(0));
      // Serialized, only the first run finds GRPC_ENABLED=false; every run changes the percent.
      expect(runs.filter((run) => run.stdout.includes('GRPC_ENABLED=true')).length).toBe(1);
      expect(runs.every((run) => /\.env\.local: changed \(.*GRPC_TRAFFIC_PERCENT=\d+\)/.test(run.stdout))).toBe(true);
      const after = await readFile(path.join(dir, '.env.local'), 'utf8');
      const last = /\nGRPC_TRAFFIC_PERCENT=(\d+)\n$/.exec(after);
      expect(percents).toContain(Number(last?.[1]));
      expect(after).toBe(
        `${text.replace('GRPC_ENABLED=false\n', 'GRPC_ENABLED=true\n')}GRPC_TRAFFIC_PERCENT=${last?.[1]}\n`,
      );
      expect(await leftovers()).toEqual([]);
    },
    CONCURRENT_TEST_TIMEOUT_MS,
  );

  it('waits a bounded time for a lock held by another, then says so and changes nothing', async () => {
    const file = path.join(dir, '.env.local');
    await writeFile(file, 'GRPC_ENABLED=false\n');
    const release = await lockfile.lock(file, {realpath: false});
    try {
      const run = await switchCli(['grpc'], {TACOS_ENV_LOCK_TIMEOUT: '500ms'});
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(/\.env\.local is being changed by another tacos/);
      expect(run.stderr).toContain('TACOS_ENV_LOCK_TIMEOUT');
      expect(await readFile(file, 'utf8')).toBe('GRPC_ENABLED=false\n');
    } finally {
      await release();
    }
    expect(await leftovers()).toEqual([]);
  });

  it('takes over the lock of a run that was killed', async () => {
    const file = path.join(dir, '.env.local');
    await writeFile(file, 'GRPC_ENABLED=false\n');
    await mkdir(`${file}.lock`);
    const longAgo = new Date(Date.now() - 60_000);
    await utimes(`${file}.lock`, longAgo, longAgo);
    const [result] = await switchEnvironments({transport: 'grpc', projectDir: dir});
    expect(result.status).toBe('changed');
    expect(await readFile(file, 'utf8')).toBe('GRPC_ENABLED=true\n');
    expect(await leftovers()).toEqual([]);
  });
});

describe('env switch keeps every byte it does not edit', () => {
  it('keeps Latin-1 and invalid UTF-8 bytes, a BOM, CRLF and a missing final newline byte for byte', async () => {
    const before = Buffer.concat([
      Buffer.from([0xef, 0xbb, 0xbf]),
      Buffer.from('# Men\xfc f\xfcr Caf\xe9s \xa9 2024\r\n', 'latin1'),
      Buffer.from('GREETING=h\xe9llo w\xf6rld\r\n', 'latin1'),
      Buffer.from('UTF8_NOTE="voilà, déjà vu"\r\n', 'utf8'),
      Buffer.from('GRPC_ENABLED=false # d\xe9sactiv\xe9\r\n', 'latin1'),
      Buffer.from([0x52, 0x41, 0x57, 0x3d, 0xff, 0xfe, 0x80, 0xc3, 0x28]), // RAW=<invalid UTF-8>, no final newline
    ]);
    const file = path.join(dir, '.env.latin');
    await writeFile(file, before);
    const results = await switchEnvironments({transport: 'grpc', projectDir: dir, env: 'latin', percent: 40});
    expect(results[0].status).toBe('changed');
    const expected = Buffer.concat([
      before.subarray(0, before.indexOf('GRPC_ENABLED=false')),
      Buffer.from('GRPC_ENABLED=true # d\xe9sactiv\xe9\r\n', 'latin1'),
      before.subarray(before.indexOf('RAW=')),
      Buffer.from('\r\nGRPC_TRAFFIC_PERCENT=40', 'latin1'),
    ]);
    expect((await readFile(file)).equals(expected), (await readFile(file)).toString('latin1')).toBe(true);
  });

  it('shows the diff of such a file with its values masked and its UTF-8 text readable', async () => {
    await writeFile(
      path.join(dir, '.env.local'),
      Buffer.concat([
        Buffer.from('# déjà\n', 'utf8'),
        Buffer.from('GREETING=h\xe9llo\nGRPC_ENABLED=false\n', 'latin1'),
      ]),
    );
    const [result] = await switchEnvironments({transport: 'grpc', projectDir: dir, dryRun: true});
    expect(result.diff).toBe(
      [
        '--- a/.env.local',
        '+++ b/.env.local',
        '@@ -1,3 +1,3 @@',
        ' # déjà',
        ' GREETING=****',
        '-GRPC_ENABLED=false',
        '+GRPC_ENABLED=true',
        '',
      ].join('\n'),
    );
  });
});

describe('env switch and symbolic links', () => {
  beforeEach(async () => {
    await mkdir(path.join(dir, 'shared'));
    await writeFile(path.join(dir, 'shared', 'local.env'), 'GRPC_ENABLED=false\n');
    await symlink(path.join('shared', 'local.env'), path.join(dir, '.env.local'));
  });

  it('refuses a link, naming where it points, and changes nothing', async () => {
    const run = await switchCli(['grpc']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`.env.local is a symbolic link to ${path.join('shared', 'local.env')}`);
    expect(run.stderr).toContain('--follow-links');
    expect(await readFile(path.join(dir, 'shared', 'local.env'), 'utf8')).toBe('GRPC_ENABLED=false\n');
    expect((await lstat(path.join(dir, '.env.local'))).isSymbolicLink()).toBe(true);
  });

  it('with --follow-links edits the file it points to, and the link stays a link', async () => {
    const run = await switchCli(['grpc', '--follow-links']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(`.env.local: changed (GRPC_ENABLED=true)`);
    expect(await readFile(path.join(dir, 'shared', 'local.env'), 'utf8')).toBe('GRPC_ENABLED=true\n');
    expect((await lstat(path.join(dir, '.env.local'))).isSymbolicLink()).toBe(true);
    expect((await readdir(path.join(dir, 'shared'))).sort()).toEqual(['local.env']);
    expect(await leftovers()).toEqual([]);
  });
});

describe('env switch on large files', () => {
  it('switches a 16,000-line file correctly within a small heap (linear time and memory)', async () => {
    const text = bigEnvFile(16_000);
    await writeFile(path.join(dir, '.env.big'), text);
    // 160 MB of heap: enough for tacos and a linear edit of the file, not for a quadratic one.
    const run = await runCli(['env', 'switch', 'grpc', '--env', 'big', '--percent', '30'], {
      cwd: dir,
      env: {NODE_OPTIONS: '--max-old-space-size=160'},
      timeoutMs: CLI_TIMEOUT_MS,
    });
    expect(run.code, run.stderr.slice(0, 2000)).toBe(0);
    expect(await readFile(path.join(dir, '.env.big'), 'utf8')).toBe(
      `${text.replace('GRPC_ENABLED=false\n', 'GRPC_ENABLED=true\n')}GRPC_TRAFFIC_PERCENT=30\n`,
    );
  });

  it('shows the diff of a 16,000-line file as two small hunks, secrets masked', async () => {
    await writeFile(path.join(dir, '.env.big'), bigEnvFile(16_000));
    const [result] = await switchEnvironments({
      transport: 'grpc',
      projectDir: dir,
      env: 'big',
      percent: 30,
      dryRun: true,
    });
    expect(result.diff).toBe(
      [
        '--- a/.env.big',
        '+++ b/.env.big',
        '@@ -5331,7 +5331,7 @@',
        ' # section 5330',
        ' SERVICE_5331_URL=**** # inline',
        ' SERVICE_5332_URL=**** # inline',
        '-GRPC_ENABLED=false',
        '+GRPC_ENABLED=true',
        ' SERVICE_5334_PASSWORD="****"',
        ' SERVICE_5335_URL=**** # inline',
        ' SERVICE_5336_URL=**** # inline',
        '@@ -15997,3 +15997,4 @@',
        ' SERVICE_15996_URL=**** # inline',
        ' SERVICE_15997_URL=**** # inline',
        ' SERVICE_15998_URL=**** # inline',
        '+GRPC_TRAFFIC_PERCENT=30',
        '',
      ].join('\n'),
    );
  });

  it('refuses a file over the size cap with a clear message, without reading it, and writes nothing', async () => {
    const file = path.join(dir, '.env.local');
    await writeFile(file, 'GRPC_ENABLED=false\n');
    await truncate(file, 200 * 1024 * 1024); // sparse: 200 MB on paper, nothing on disk
    const run = await runCli(['env', 'switch', 'grpc'], {
      cwd: dir,
      env: {NODE_OPTIONS: '--max-old-space-size=160'},
      timeoutMs: CLI_TIMEOUT_MS,
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      '.env.local is 200.0 MiB, over the 1.0 MiB an env file may have: nothing was changed.',
    );
    expect(run.stderr).toContain('TACOS_ENV_FILE_MAX_BYTES');
    expect((await lstat(file)).size).toBe(200 * 1024 * 1024);
    expect((await readFile(file)).subarray(0, 19).toString()).toBe('GRPC_ENABLED=false\n');
    expect(await leftovers()).toEqual([]);
  });

  it('takes its cap from TACOS_ENV_FILE_MAX_BYTES', async () => {
    const text = bigEnvFile(100);
    await writeFile(path.join(dir, '.env.local'), text);
    const refused = await switchCli(['grpc'], {TACOS_ENV_FILE_MAX_BYTES: '1000'});
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/over the 1000 bytes an env file may have/);
    expect(await readFile(path.join(dir, '.env.local'), 'utf8')).toBe(text);
  });
});
