import {constants, type Stats} from 'node:fs';
import {randomBytes} from 'node:crypto';
import {access, open, readFile, rename, rm, stat} from 'node:fs/promises';
import path from 'node:path';
import {TacosError, errorMessage} from '../errors.js';

/** A replacement of one file, written and synced beside it, waiting to be renamed into place. */
export interface PreparedWrite {
  /** The file itself (a symlink's target: the link stays a link). */
  target: string;
  temporary: string;
  /** The bytes the plan was made from: renaming is refused when the file changed since. */
  expected: Buffer;
}

/**
 * Writes `bytes` to a temporary file beside `target` (a regular file, not a link: its mode and
 * owner kept, synced), refusing a file its owner made read-only. Nothing replaces it until `commit`.
 */
export async function prepareWrite(target: string, expected: Buffer, bytes: Buffer): Promise<PreparedWrite> {
  const label = path.basename(target);
  const info = await stat(target);
  // No write bit at all is a choice of the owner (root could write it anyway, and a rename ignores it).
  const writable =
    (info.mode & 0o222) !== 0 &&
    (await access(target, constants.W_OK).then(
      () => true,
      () => false,
    ));
  if (!writable) {
    throw new TacosError(`${label} is read-only: nothing was changed.`, {
      hint: `Make it writable (chmod u+w ${target}) if it is meant to change.`,
      code: 'ENV_READ_ONLY',
    });
  }
  const temporary = await writeBeside(target, bytes, info).catch((error: unknown) => {
    throw new TacosError(`Cannot write beside ${label}: ${errorMessage(error)}. Nothing was changed.`, {
      hint: 'Check that its directory is writable.',
      code: 'ENV_WRITE_FAILED',
    });
  });
  return {target, temporary, expected};
}

/** Renames a prepared write into place, unless the file changed since it was read (another edit wins, and is kept). */
export async function commitWrite(prepared: PreparedWrite): Promise<void> {
  const {target, temporary, expected} = prepared;
  // Read only when the size still fits: what was read had at most the size cap.
  const unchanged = (await stat(target)).size === expected.length && (await readFile(target)).equals(expected);
  if (!unchanged) {
    await rm(temporary, {force: true});
    throw new TacosError(`${path.basename(target)} changed while tacos was editing it: it was left as it is now.`, {
      hint: 'Run the switch again.',
      code: 'ENV_CHANGED',
    });
  }
  await rename(temporary, target);
  await syncDirectory(path.dirname(target));
}

export async function discardWrite(prepared: PreparedWrite): Promise<void> {
  await rm(prepared.temporary, {force: true});
}

/** Keeps `bytes` (the file as read) as `<file>.bak` with the file's mode, replacing an older backup (and not writing through a link there). */
export async function backupFile(file: string, bytes: Buffer): Promise<string> {
  const backup = `${file}.bak`;
  try {
    const temporary = await writeBeside(backup, bytes, await stat(file));
    await rename(temporary, backup).catch(async (error: unknown) => {
      await rm(temporary, {force: true});
      throw error;
    });
  } catch (error) {
    throw new TacosError(
      `Cannot keep a backup of ${path.basename(file)} as ${path.basename(backup)}: ${errorMessage(error)}. Nothing was changed.`,
      {code: 'ENV_WRITE_FAILED'},
    );
  }
  return backup;
}

/** Writes `bytes` to a new temporary file beside `file` with the mode (and, as root, the owner) of `like`, synced; removed on failure. */
async function writeBeside(file: string, bytes: Buffer, like: Stats): Promise<string> {
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await open(temporary, 'wx', like.mode & 0o7777);
    try {
      await handle.writeFile(bytes);
      await handle.chmod(like.mode & 0o7777); // open's mode is reduced by the umask
      // The app that reads the file may run as its owner: keep it.
      if (process.getuid?.() === 0) await handle.chown(like.uid, like.gid);
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch (error) {
    await rm(temporary, {force: true});
    throw error;
  }
  return temporary;
}

/** Makes a rename in `dir` durable. */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
