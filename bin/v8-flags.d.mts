/** See v8-flags.mjs: the flags of `defaults` that node's command line and NODE_OPTIONS leave unset. */
export function v8Defaults(defaults: string[], execArgv?: string[], nodeOptions?: string): string[];
