/**
 * Cold start of the whole stack to all-ready: `tacos up --detach` in a fresh project dir whose env
 * file puts every service (Redis included, so redis-server starts cold) on free loopback ports.
 * Runs a bounded number of rounds, `tacos down` after each. Goal on a 2-core machine: under 3 s.
 *   npm run bench:up [-- --rounds 5]
 */
import {execFileSync} from 'node:child_process';
import {mkdtemp, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {freePorts} from './free-port.js';

const BIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'run.js');
const GOAL_MS = 3000;
const rounds = Math.min(10, Math.max(1, Number(process.argv[process.argv.indexOf('--rounds') + 1]) || 5));

const tacos = (cwd: string, ...args: string[]) =>
  execFileSync(process.execPath, [BIN, ...args], {cwd, stdio: 'pipe', timeout: 60_000});

const project = await mkdtemp(path.join(tmpdir(), 'tacos-bench-up-'));
const ports = await freePorts(7);
await writeFile(
  path.join(project, '.env.local'),
  [
    'GRPC_ENABLED=true',
    `SERVER_PORT=${ports[0]}`,
    `GRPC_PORT=${ports[1]}`,
    `RESERVATION_HTTP_PORT=${ports[2]}`,
    `RESERVATION_GRPC_PORT=${ports[3]}`,
    `PAYMENT_HTTP_PORT=${ports[4]}`,
    `PAYMENT_GRPC_PORT=${ports[5]}`,
    `REDIS_ADDRESS=127.0.0.1:${ports[6]}`,
    'LOG_LEVEL=warn',
    '',
  ].join('\n'),
);

const times: number[] = [];
try {
  for (let round = 0; round < rounds; round++) {
    const started = performance.now();
    tacos(project, 'up', '--detach');
    times.push(performance.now() - started);
    tacos(project, 'down');
  }
} finally {
  tacos(project, 'down');
  await rm(project, {recursive: true, force: true});
}
times.sort((a, b) => a - b);
const median = times[Math.floor(times.length / 2)];
console.log(
  `tacos up --detach, cold, to all-ready (${rounds} rounds): min ${times[0].toFixed(0)} ms, median ${median.toFixed(0)} ms, max ${times.at(-1)!.toFixed(0)} ms`,
);
console.log(`goal: under ${GOAL_MS} ms: ${median < GOAL_MS ? 'met' : 'NOT met'}`);
