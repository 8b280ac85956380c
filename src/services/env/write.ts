import {constants} from 'node:fs';
import {randomBytes} from 'node:crypto';
import {access, chmod, copyFile, open, readFile, realpath, rename, rm, stat} from 'node:fs/promises';
import path from 'node:path';
import {TacosError, errorMessage} from '../errors.js';

/** A replacement of one file, written and synced beside it, waiting to be renamed into place. */
export interface PreparedWrite {
  /** The file itself (a symlink's target: the link stays a link). */
  target: string;
  temporary: string;
  /** The text the plan was made from: renaming is refused when the file changed since. */
  expected: string;
}

/**
 * Writes `text` to a temporary file beside `file` (its mode and owner kept, synced), refusing a
 * file its owner made read-only. Nothing replaces the file until `commit`.
 */
export async function prepareWrite(file: string, expected: string, text: string): Promise<PreparedWrite> {
  const target = await realpath(file);
  const label = path.basename(file);
  const info = await stat(target);
  // No write bit at all is a choice of the owner (root could write it anyway, and a rename ignores it).
  const writable = (info.mode & 0o222) !== 0 && (await access(target, constants.W_OK).then(() => true, () => false));
  if (!writable) {
    throw new TacosError(`${label} is read-only: nothing was changed.`, {hint: `Make it writable (chmod u+w ${target}) if it is meant to change.`, code: 'ENV_READ_ONLY'});
  }
  const temporary = path.join(path.dirname(target), `.${path.basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await open(temporary, 'wx', info.mode & 0o7777);
    try {
      await handle.writeFile(text, 'utf8');
      await handle.chmod(info.mode & 0o7777); // open's mode is reduced by the umask
      // The app that reads the file may run as its owner: keep it.
      if (process.getuid?.() === 0) await handle.chown(info.uid, info.gid);
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch (error) {
    await rm(temporary, {force: true});
    throw new TacosError(`Cannot write beside ${label}: ${errorMessage(error)}. Nothing was changed.`, {hint: 'Check that its directory is writable.', code: 'ENV_WRITE_FAILED'});
  }
  return {target, temporary, expected};
}

/** Renames a prepared write into place, unless the file changed since it was read (another edit wins, and is kept). */
export async function commitWrite(prepared: PreparedWrite): Promise<void> {
  if ((await readFile(prepared.target, 'utf8')) !== prepared.expected) {
    await rm(prepared.temporary, {force: true});
    throw new TacosError(`${path.basename(prepared.target)} changed while tacos was editing it: it was left as it is now.`, {hint: 'Run the switch again.', code: 'ENV_CHANGED'});
  }
  await rename(prepared.temporary, prepared.target);
}

export async function discardWrite(prepared: PreparedWrite): Promise<void> {
  await rm(prepared.temporary, {force: true});
}

/** Keeps a copy of `file` as `<file>.bak` (same mode), replacing an older backup. */
export async function backupFile(file: string): Promise<string> {
  const backup = `${file}.bak`;
  try {
    await copyFile(file, backup);
    await chmod(backup, (await stat(file)).mode & 0o7777);
  } catch (error) {
    throw new TacosError(`Cannot keep a backup of ${path.basename(file)} as ${path.basename(backup)}: ${errorMessage(error)}. Nothing was changed.`, {code: 'ENV_WRITE_FAILED'});
  }
  return backup;
}
