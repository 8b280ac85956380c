import {randomBytes} from 'node:crypto';

/* What both mocks' messages share: page sizes, request fields as text, new ids. */

/** Page size of a list call that asks for none, and the largest one it may ask for. */
export const DEFAULT_PAGE_SIZE = 20;
export const MAX_PAGE_SIZE = 100;

/** A request field as text: unset (null, undefined) is ''. */
export function text(value: unknown): string {
  return typeof value === 'string' ? value : value === null || value === undefined ? '' : String(value);
}

/** `<prefix>_<24 hex digits>`: random, so ids do not reveal how many came before. */
export function newId(prefix: string): string {
  return `${prefix}_${randomBytes(12).toString('hex')}`;
}
