import {readFileSync} from 'node:fs';
import path from 'node:path';
import {PACKAGE_ROOT} from './paths.js';

/** The tacos package version, from package.json. */
export const TACOS_VERSION: string = JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')).version;
