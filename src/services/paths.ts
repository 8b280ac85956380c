import {fileURLToPath} from 'node:url';

/** The tacos package root (the same from src/ under tsx and from dist/ once built). */
export const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));
