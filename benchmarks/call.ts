/**
 * Wall time of a warm `tacos call` (schema cached) against a plain Node script making the same
 * call from the static .proto, both as fresh processes run in turn, against the reservation mock on
 * loopback. Goal: tacos call takes at most 1.2 times as long (1.5 at worst). Also shown: a call
 * with --refresh, which asks the server for its schema first (as a first call to a target does).
 * npm run bench:call [-- --rounds 10]   (then benchmarks/startup.ts: tacos --help)
 */
import {execFileSync, spawn} from 'node:child_process';
import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {median, roundsArgument, verdict} from './process-timing.js';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(root, 'bin', 'run.js');
const rounds = roundsArgument(10);

const project = await mkdtemp(path.join(tmpdir(), 'tacos-bench-call-'));
const mock = spawn(process.execPath, [BIN, 'serve', 'reservation', '--http-port', '0', '--grpc-port', '0'], {
  cwd: project,
  stdio: ['ignore', 'pipe', 'inherit'],
  env: {...process.env, LOG_LEVEL: 'info'},
});
const address = await new Promise<string>((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error('the reservation mock did not start within 15 s')), 15_000);
  mock.stdout.on('data', (chunk: Buffer) => {
    const match = /"grpc":"grpc:\/\/([^"]+)"/.exec(String(chunk));
    if (match) {
      clearTimeout(timer);
      resolve(match[1]);
    }
  });
});

const time = (args: string[]): number => {
  const started = performance.now();
  execFileSync(process.execPath, args, {cwd: project, stdio: 'pipe', timeout: 30_000});
  return performance.now() - started;
};

try {
  const tacosArgs = [
    BIN,
    'call',
    '--addr',
    address,
    'reservation.v1.ReservationService.ListReservations',
    '-d',
    '{"user_id":"bench"}',
  ];
  const plainArgs = [path.join(root, 'benchmarks', 'plain-call.mjs'), address];
  time([...tacosArgs, '--refresh']); // warms the schema cache
  time(plainArgs); // and the file system cache for both
  const tacos: number[] = [];
  const plain: number[] = [];
  const refreshed: number[] = [];
  for (let round = 0; round < rounds; round++) {
    tacos.push(time(tacosArgs));
    plain.push(time(plainArgs));
    refreshed.push(time([...tacosArgs, '--refresh']));
  }
  console.log(`${rounds} rounds each, one after the other:`);
  console.log(`  warm tacos call          median ${median(tacos).toFixed(0)} ms`);
  console.log(`  plain grpc-js script     median ${median(plain).toFixed(0)} ms`);
  console.log(`  tacos call --refresh     median ${median(refreshed).toFixed(0)} ms (reflection first; no goal)`);
  console.log(verdict('tacos call / plain script', median(tacos) / median(plain), 1.2, 1.5));
} finally {
  mock.kill('SIGTERM');
  await rm(project, {recursive: true, force: true});
}
