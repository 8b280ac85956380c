import path from 'node:path';
import lockfile from 'proper-lockfile';
import {TacosError} from '../errors.js';

/** A lock not refreshed for this long is left by a run that died, and is taken over. */
const STALE_MS = 5000;
const RETRY_MS = 50;

export interface EnvFileLocks {
  /** Throws when a lock was lost (taken over as stale) since it was taken: writing then could lose an edit. */
  check(): void;
  release(): Promise<void>;
}

/**
 * Locks env files against other tacos runs (`<file>.lock` beside each, a directory made atomically
 * and kept fresh while held), waiting up to `timeoutMs` for each. Files are locked in one order, so
 * two runs on overlapping sets cannot wait for each other forever.
 */
export async function lockEnvFiles(files: string[], timeoutMs: number): Promise<EnvFileLocks> {
  const releases: Array<() => Promise<void>> = [];
  const lost: string[] = [];
  const release = async () => {
    // A lost lock belongs to whoever took it over: it is not removed.
    await Promise.all(
      releases.map((releaseOne) =>
        releaseOne().catch((error: NodeJS.ErrnoException) => {
          if (error.code !== 'ERELEASED') throw error;
        }),
      ),
    );
  };
  for (const file of [...new Set(files)].sort()) {
    try {
      releases.push(
        await lockfile.lock(file, {
          realpath: false,
          stale: STALE_MS,
          retries: {retries: Math.ceil(timeoutMs / RETRY_MS), factor: 1, minTimeout: RETRY_MS, maxTimeout: RETRY_MS},
          onCompromised: () => lost.push(file),
        }),
      );
    } catch (error) {
      await release();
      const label = path.basename(file);
      if ((error as NodeJS.ErrnoException).code !== 'ELOCKED') {
        throw new TacosError(
          `Cannot lock ${label} (${label}.lock beside it): ${(error as Error).message}. Nothing was changed.`,
          {hint: 'Check that its directory is writable.', code: 'ENV_LOCK', cause: error},
        );
      }
      throw new TacosError(
        `${label} is being changed by another tacos (${label}.lock); waited ${timeoutMs} ms. Nothing was changed.`,
        {
          hint: `Run the switch again when the other is done, or wait longer with TACOS_ENV_LOCK_TIMEOUT (a lock left by a run that was killed is taken over after ${STALE_MS / 1000} s).`,
          code: 'ENV_LOCKED',
          cause: error,
        },
      );
    }
  }
  return {
    check() {
      if (lost.length > 0) {
        throw new TacosError(
          `The lock on ${lost.map((file) => path.basename(file)).join(', ')} was taken over while tacos held it: nothing more was changed.`,
          {hint: 'Run the switch again.', code: 'ENV_LOCK_LOST'},
        );
      }
    },
    release,
  };
}
