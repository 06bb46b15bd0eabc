/** See bundle.mjs: dist/cli.mjs under root when it is up to date with src/, else null. */
export function freshBundle(root: string): string | null;
