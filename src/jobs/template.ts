import { Liquid, type Template } from 'liquidjs';
import { DomainError } from '../errors.ts';

export interface TemplateSource {
  subject: string;
  html?: string;
  text?: string;
}

/** What a template may use, per recipient. Nothing else is in scope. */
export interface RecipientVars {
  email: string;
  subscriber_id: string;
  preferences: Record<string, unknown>;
  unsubscribe_url: string;
  /** The contact: email, first_name, last_name, its properties, and the Member Center's preferences. */
  contact?: Record<string, unknown>;
}

/** A stored template's variables (src/templates/): the caller's own values, nothing else in scope. */
export type TemplateVariables = Record<string, unknown>;

export interface RenderOptions {
  /** A variable the template uses but the values lack fails the render (`missing_variable`). */
  strict?: boolean;
}

export interface CompiledTemplate {
  render(vars: RecipientVars | TemplateVariables, options?: RenderOptions): { subject: string; html?: string; text?: string };
}

/**
 * Limits for untrusted tenant templates. Parsing is bounded by size; rendering by wall time
 * (checked between template nodes, so a runaway loop stops) and by the characters allocated by
 * filters and ranges (so `append` doubling or `(1..1e9)` stops long before memory runs out).
 */
export const TEMPLATE_LIMITS = {
  /** Characters of Liquid source per part (subject, html, text). */
  parseChars: 2_000_000,
  /** Wall time of one render at job creation (with sample values). */
  compileRenderMs: 200,
  /** Wall time of one render per recipient: a backstop, generous so a GC pause never fails a send. */
  renderMs: 1_000,
  /** Characters (and range items) allocated by one render. */
  memory: 20_000_000,
} as const;

const common = {
  ownPropertyOnly: true, // no prototype access: {{ email.constructor }} is nothing
  strictFilters: true, // an unknown filter is an error at job creation, not a silent no-op
  strictVariables: false, // a missing preference renders empty, as Liquid authors expect
  lenientIf: true, // under a strict render, `{% if x %}` and `| default` may still test a missing x
  templates: {}, // include/render/layout resolve against an empty in-memory map: never the disk
  cache: false,
  parseLimit: TEMPLATE_LIMITS.parseChars,
  memoryLimit: TEMPLATE_LIMITS.memory,
  timezoneOffset: 0,
  dateFormat: '%Y-%m-%dT%H:%M:%SZ',
} as const;

// HTML output is escaped by default (`| raw` opts out): subscriber-supplied preferences must not
// inject markup (or links the tracker would then sign) into the message.
const htmlEngine = new Liquid({ ...common, outputEscape: 'escape' });
const plainEngine = new Liquid(common);

const SAMPLE: RecipientVars = {
  email: 'recipient@example.com',
  subscriber_id: '00000000-0000-4000-8000-000000000000',
  preferences: {},
  unsubscribe_url: 'https://example.invalid/u/sample',
  contact: { email: 'recipient@example.com', first_name: 'Sample', last_name: 'Recipient', preferences: {} },
};

const HAS_LIQUID = /\{\{|\{%/;

type Part = (vars: object, renderLimit: number, strict?: boolean) => string;

function templateError(part: string, err: unknown): DomainError {
  // liquidjs messages carry the line/column; keep them, but never a stack or a file path.
  const message = (err as Error)?.message?.split('\n')[0] ?? String(err);
  const missing = (err as Error)?.name === 'UndefinedVariableError' ? /^undefined variable: ([^,]+)/.exec(message) : null;
  if (missing) return new DomainError('invalid', 'missing_variable', `template ${part}: variable "${missing[1]}" is used but not given (${message})`);
  return new DomainError('invalid', 'template_error', `template ${part}: ${message}`);
}

function compilePart(engine: Liquid, name: string, source: string): Part {
  // Most plain bodies have no tags at all: no parse, no render, the source is the output.
  if (!HAS_LIQUID.test(source)) return () => source;
  let tpl: Template[];
  try {
    tpl = engine.parse(source);
  } catch (err) {
    throw templateError(name, err);
  }
  return (vars, renderLimit, strict) => {
    try {
      // The vars object is the whole scope: globals stay empty, and nothing of ours leaks in.
      return engine.renderSync(tpl, vars, { renderLimit, memoryLimit: TEMPLATE_LIMITS.memory, strictVariables: strict }) as string;
    } catch (err) {
      throw templateError(name, err);
    }
  };
}

/**
 * Parses once (per job) without rendering: what a worker does at send time, where a sample render
 * would only repeat the check made at creation. Throws DomainError('invalid', 'template_error', msg)
 * on a syntax error.
 */
export function parseTemplate(source: TemplateSource): CompiledTemplate & { check(): void } {
  if (!source || typeof source.subject !== 'string') throw new DomainError('invalid', 'template_error', 'template subject must be a string');
  for (const k of ['html', 'text'] as const) {
    if (source[k] !== undefined && typeof source[k] !== 'string') throw new DomainError('invalid', 'template_error', `template ${k} must be a string`);
  }
  const subject = compilePart(plainEngine, 'subject', source.subject);
  const html = source.html === undefined ? undefined : compilePart(htmlEngine, 'html', source.html);
  const text = source.text === undefined ? undefined : compilePart(plainEngine, 'text', source.text);

  const run = (vars: object, limit: number, strict?: boolean) => {
    const out: { subject: string; html?: string; text?: string } = {
      // A header cannot span lines: a template that renders newlines into the subject folds to spaces.
      subject: subject(vars, limit, strict).replace(/[\r\n]+\s*/g, ' ').trim(),
    };
    if (html) out.html = html(vars, limit, strict);
    if (text) out.text = text(vars, limit, strict);
    return out;
  };
  return {
    render: (vars, options) => run(vars, TEMPLATE_LIMITS.renderMs, options?.strict),
    check: () => void run(SAMPLE, TEMPLATE_LIMITS.compileRenderMs),
  };
}

/**
 * Parses and renders once with sample values: what a job's creation checks. Throws
 * DomainError('invalid', 'template_error', msg) on a syntax error, or when rendering with sample
 * vars fails (unknown filter, render limit exceeded, …). A template can still fail later, with a
 * recipient's own values: that fails the recipient's message (src/jobs/render.ts), never the job.
 */
export function compileTemplate(source: TemplateSource): CompiledTemplate {
  const template = parseTemplate(source);
  // Fail the job's creation, not half its sends: a template that cannot render once fails here.
  template.check();
  return { render: template.render };
}
