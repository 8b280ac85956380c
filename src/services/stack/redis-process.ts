import {spawn} from 'node:child_process';
import {mkdir} from 'node:fs/promises';
import {TacosError} from '../errors.js';
import {waitForStopSignal} from '../signals.js';

/**
 * Runs redis-server on 127.0.0.1 (and ::1 when there is one) with its own dir and no persistence,
 * until a stop signal (or, under `tacos up`, until up is gone), then stops it. Returns its exit code.
 */
export async function serveRedis(options: {port: number; dir: string}): Promise<number> {
  await mkdir(options.dir, {recursive: true});
  const child = spawn('redis-server', ['--port', String(options.port), '--bind', '127.0.0.1', '-::1', '--dir', options.dir, '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const exited = new Promise<number>((resolve, reject) => {
    child.once('error', (error) =>
      reject(new TacosError(`Cannot start redis-server: ${error.message}`, {hint: 'Install it (Debian: apt-get install -y redis-server).', code: 'REDIS_MISSING'})),
    );
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
  const outcome = await Promise.race([exited.then((code) => ({code})), waitForStopSignal().then(() => undefined)]);
  if (outcome) return outcome.code;
  child.kill('SIGTERM');
  await exited;
  return 0;
}
