import {mkdir} from 'node:fs/promises';
import {execa} from 'execa';
import {TacosError} from '../errors.js';
import {waitForStopSignal} from '../signals.js';

/**
 * Runs redis-server on 127.0.0.1 (and ::1 when there is one) with its own dir and no persistence,
 * until a stop signal (or, under `tacos up`, until up is gone), then stops it. Returns its exit code.
 */
export async function serveRedis(options: {port: number; dir: string}): Promise<number> {
  await mkdir(options.dir, {recursive: true});
  const redis = execa(
    'redis-server',
    [
      '--port',
      String(options.port),
      '--bind',
      '127.0.0.1',
      '-::1',
      '--dir',
      options.dir,
      '--save',
      '',
      '--appendonly',
      'no',
    ],
    {
      stdio: ['ignore', 'inherit', 'inherit'],
      reject: false,
      forceKillAfterDelay: false,
    },
  );
  const exited = redis.then((result) => {
    if (result.exitCode === undefined && result.signal === undefined) {
      throw new TacosError(`Cannot start redis-server: ${result.originalMessage}`, {
        hint: 'Install it (Debian: apt-get install -y redis-server).',
        code: 'REDIS_MISSING',
      });
    }
    return result.exitCode ?? 128;
  });
  const outcome = await Promise.race([exited.then((code) => ({code})), waitForStopSignal().then(() => undefined)]);
  if (outcome) return outcome.code;
  redis.kill('SIGTERM');
  await exited;
  return 0;
}
