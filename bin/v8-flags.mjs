// Which of the launcher's V8 settings (bin/send-engine.mjs) apply: an explicit one wins.

/** A flag's name without `--`, `no-`, a value, and with `_` as `-`: `--no-optimize_for_size` -> `optimize-for-size`. */
const flagName = (flag) => flag.replace(/^--(no-)?/, '').split('=')[0].replaceAll('_', '-');

/**
 * The flags of `defaults` that node's command line (`execArgv`) and NODE_OPTIONS leave unset:
 * a flag given there, either way (`--x`, `--no-x`, `--x=value`), is not overridden.
 */
export function v8Defaults(defaults, execArgv = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? '') {
  const given = new Set([...execArgv, ...nodeOptions.split(/\s+/)].filter((arg) => arg.startsWith('--')).map(flagName));
  return defaults.filter((flag) => !given.has(flagName(flag)));
}
