/**
 * Wall time of a warm `tacos call` (schema cached) against a plain Node script making the same
 * call from the static .proto, both as fresh processes, against the reservation mock on loopback.
 * Goal: tacos call takes at most 1.5 times as long.  npm run bench:call [-- --rounds 10]
 */
import {execFileSync, spawn} from 'node:child_process';
import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(root, 'bin', 'run.js');
const rounds = Math.min(30, Math.max(3, Number(process.argv[process.argv.indexOf('--rounds') + 1]) || 10));

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

const time = (file: string, args: string[]): number => {
  const started = performance.now();
  execFileSync(file, args, {cwd: project, stdio: 'pipe', timeout: 30_000});
  return performance.now() - started;
};
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

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
  time(process.execPath, [...tacosArgs, '--refresh']); // warms the schema cache
  const tacos: number[] = [];
  const plain: number[] = [];
  for (let round = 0; round < rounds; round++) {
    tacos.push(time(process.execPath, tacosArgs));
    plain.push(time(process.execPath, [path.join(root, 'benchmarks', 'plain-call.mjs'), address]));
  }
  const ratio = median(tacos) / median(plain);
  console.log(
    `warm tacos call: median ${median(tacos).toFixed(0)} ms; plain grpc-js script: median ${median(plain).toFixed(0)} ms (${rounds} rounds each)`,
  );
  console.log(`ratio ${ratio.toFixed(2)} (goal: at most 1.5): ${ratio <= 1.5 ? 'met' : 'NOT met'}`);
} finally {
  mock.kill('SIGTERM');
  await rm(project, {recursive: true, force: true});
}
