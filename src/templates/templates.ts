import type { Queryable } from '../db/pool.ts';
import { DomainError, invalid } from '../errors.ts';
import { newId } from '../ids.ts';
import type { TemplateSource } from '../jobs/template.ts';
import { decodeCursor, encodeCursor, UUID } from '../observability/cursor.ts';
import type { Page } from '../observability/messages.ts';
import { validateHeaderValue } from '../sending/headers.ts';

/** POST /v1/templates and PUT /v1/templates/{id}: the content of one version. */
export interface TemplateInput {
  name: string;
  subject: string;
  html?: string | null;
  text?: string | null;
  slug?: string;
}

export interface TemplateView {
  id: string;
  slug: string;
  version: number;
  name: string;
  subject: string;
  html: string | null;
  text: string | null;
  created_at: string;
  updated_at: string;
}

export interface TemplateVersionView {
  template_id: string;
  version: number;
  name: string;
  subject: string;
  html: string | null;
  text: string | null;
  created_at: string;
}

/** Renders a source once (in a render thread) to prove it parses and runs: src/jobs/render.ts. */
export type TemplateCheck = (source: TemplateSource) => Promise<unknown>;

/** Lower-case letters, digits, `.`, `-` and `_` (SendOps slugs are file names: `welcome.html`), starting with a letter or digit; never a UUID (ids are looked up as such). */
export const SLUG = /^[a-z0-9][a-z0-9._-]{0,99}$/;

const SELECT_CURRENT = `
  SELECT t.id, t.slug, v.version, v.name, v.subject, v.html, v.text_body AS text, t.created_at, t.updated_at, t.created_at::text AS position
    FROM templates t JOIN template_versions v ON v.template_id = t.id AND v.version = t.current_version`;

type TemplateRow = TemplateView & { position: string };

function view(row: TemplateRow | (Omit<TemplateView, 'created_at' | 'updated_at'> & { created_at: Date; updated_at: Date })): TemplateView {
  const { id, slug, version, name, subject, html, text } = row;
  return { id, slug, version, name, subject, html, text, created_at: new Date(row.created_at).toISOString(), updated_at: new Date(row.updated_at).toISOString() };
}

/** A readable slug from the name: `Order Confirmation!` → `order-confirmation`. */
export function slugFromName(name: string): string {
  const slug = name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 80)
    .replace(/-+$/, '');
  return slug || 'template';
}

async function checkInput(input: TemplateInput, check: TemplateCheck): Promise<TemplateSource> {
  if (input.slug !== undefined && (!SLUG.test(input.slug) || UUID.test(input.slug))) {
    throw invalid('slug must be 1-100 of a-z, 0-9, ".", "-" and "_", starting with a letter or digit, and not a UUID', 'invalid_slug');
  }
  if (!input.html && !input.text) throw invalid('html and text must not both be empty');
  // A control character in the Liquid source of a subject would be one in every header it renders.
  validateHeaderValue('Subject', input.subject);
  const source: TemplateSource = { subject: input.subject, ...(input.html ? { html: input.html } : {}), ...(input.text ? { text: input.text } : {}) };
  await check(source);
  return source;
}

const isUniqueViolation = (err: unknown) => (err as { code?: string }).code === '23505';

export async function createTemplate(db: Queryable, tenantId: string, input: TemplateInput, check: TemplateCheck): Promise<TemplateView> {
  await checkInput(input, check);
  const id = newId();
  const insert = (slug: string) =>
    db.query<TemplateView & { created_at: Date; updated_at: Date }>(
      `WITH t AS (
         INSERT INTO templates (id, tenant_id, slug, current_version) VALUES ($1, $2, $3, 1) RETURNING id, slug, created_at, updated_at
       ), v AS (
         INSERT INTO template_versions (template_id, version, tenant_id, name, subject, html, text_body)
         SELECT t.id, 1, $2, $4, $5, $6, $7 FROM t RETURNING version
       )
       SELECT t.id, t.slug, v.version, $4 AS name, $5 AS subject, $6 AS html, $7 AS text, t.created_at, t.updated_at FROM t, v`,
      [id, tenantId, slug, input.name, input.subject, input.html || null, input.text || null],
    );
  try {
    return view((await insert(input.slug ?? slugFromName(input.name))).rows[0]);
  } catch (err) {
    if (!isUniqueViolation(err)) throw err;
    if (input.slug !== undefined) throw new DomainError('conflict', 'slug_taken', `another template of this account has slug "${input.slug}"`);
    // A slug derived from the name that another template has: made unique with the id's tail.
    return view((await insert(`${slugFromName(input.name).slice(0, 80)}-${id.slice(-8)}`)).rows[0]);
  }
}

/** The template's id for an id or a slug of this tenant; another tenant's answers not found. */
async function resolveId(db: Queryable, tenantId: string, idOrSlug: string): Promise<string> {
  const { rows } = await db.query<{ id: string }>(
    UUID.test(idOrSlug) ? 'SELECT id FROM templates WHERE tenant_id = $1 AND id = $2::uuid' : 'SELECT id FROM templates WHERE tenant_id = $1 AND slug = $2',
    [tenantId, idOrSlug],
  );
  if (!rows[0]) throw new DomainError('not_found', 'not_found', `template ${idOrSlug.slice(0, 100)} not found`);
  return rows[0].id;
}

export async function getTemplate(db: Queryable, tenantId: string, idOrSlug: string): Promise<TemplateView> {
  const id = await resolveId(db, tenantId, idOrSlug);
  const { rows } = await db.query<TemplateRow>(`${SELECT_CURRENT} WHERE t.tenant_id = $1 AND t.id = $2`, [tenantId, id]);
  if (!rows[0]) throw new DomainError('not_found', 'not_found', `template ${idOrSlug.slice(0, 100)} not found`);
  return view(rows[0]);
}

/** Newest first, keyset pages on (created_at, id). */
export async function listTemplates(db: Queryable, tenantId: string, options: { limit: number; cursor?: string }): Promise<Page<TemplateView>> {
  const after = decodeCursor(options.cursor, { t: 'time', i: 'uuid' });
  const params: unknown[] = [tenantId, options.limit + 1];
  let where = 't.tenant_id = $1';
  if (after) {
    params.push(after.t, after.i);
    where += ' AND (t.created_at, t.id) < ($3::timestamptz, $4::uuid)';
  }
  const { rows } = await db.query<TemplateRow>(`${SELECT_CURRENT} WHERE ${where} ORDER BY t.created_at DESC, t.id DESC LIMIT $2`, params).catch((err: { code?: string }) => {
    if (err.code?.startsWith('22')) throw invalid('malformed cursor: drop it and start from the first page', 'validation_failed');
    throw err;
  });
  const more = rows.length > options.limit;
  const data = more ? rows.slice(0, options.limit) : rows;
  const last = data[data.length - 1];
  return { data: data.map(view), nextCursor: more ? encodeCursor({ t: last.position, i: last.id }) : null };
}

/** PUT: a new version becomes current; every earlier one stays readable. */
export async function updateTemplate(db: Queryable, tenantId: string, idOrSlug: string, input: TemplateInput, check: TemplateCheck): Promise<TemplateView> {
  await checkInput(input, check);
  const id = await resolveId(db, tenantId, idOrSlug);
  try {
    const { rows } = await db.query<TemplateView & { created_at: Date; updated_at: Date }>(
      `WITH t AS (
         UPDATE templates SET current_version = current_version + 1, slug = coalesce($3, slug), updated_at = now()
          WHERE tenant_id = $1 AND id = $2 RETURNING id, slug, current_version, created_at, updated_at
       ), v AS (
         INSERT INTO template_versions (template_id, version, tenant_id, name, subject, html, text_body)
         SELECT t.id, t.current_version, $1, $4, $5, $6, $7 FROM t RETURNING version
       )
       SELECT t.id, t.slug, v.version, $4 AS name, $5 AS subject, $6 AS html, $7 AS text, t.created_at, t.updated_at FROM t, v`,
      [tenantId, id, input.slug ?? null, input.name, input.subject, input.html || null, input.text || null],
    );
    if (!rows[0]) throw new DomainError('not_found', 'not_found', `template ${idOrSlug.slice(0, 100)} not found`);
    return view(rows[0]);
  } catch (err) {
    if (isUniqueViolation(err)) throw new DomainError('conflict', 'slug_taken', `another template of this account has slug "${input.slug}"`);
    throw err;
  }
}

/**
 * Removes a template and all its versions, unless a list send job (or campaign) that is pending or
 * running uses it: 409 `template_in_use`. Messages already accepted keep what they rendered.
 */
export async function deleteTemplate(db: Queryable, tenantId: string, idOrSlug: string): Promise<void> {
  const id = await resolveId(db, tenantId, idOrSlug);
  const { rows } = await db.query<{ deleted: boolean; in_use: string | null }>(
    `WITH in_use AS (
       SELECT id FROM send_jobs WHERE tenant_id = $1 AND template_id = $2 AND status IN ('pending', 'running') LIMIT 1
     ), gone AS (
       DELETE FROM templates WHERE tenant_id = $1 AND id = $2 AND NOT EXISTS (SELECT 1 FROM in_use) RETURNING id
     )
     SELECT EXISTS (SELECT 1 FROM gone) AS deleted, (SELECT id FROM in_use) AS in_use`,
    [tenantId, id],
  );
  if (rows[0].in_use) throw new DomainError('conflict', 'template_in_use', `template is used by send job ${rows[0].in_use}, which is scheduled or running`);
  if (!rows[0].deleted) throw new DomainError('not_found', 'not_found', `template ${idOrSlug.slice(0, 100)} not found`);
}

const versionView = (r: TemplateVersionView & { created_at: Date }): TemplateVersionView => ({ ...r, created_at: new Date(r.created_at).toISOString() });

/** Every version, newest first; `cursor` is the last version served. */
export async function listTemplateVersions(db: Queryable, tenantId: string, idOrSlug: string, options: { limit: number; cursor?: string }): Promise<Page<TemplateVersionView>> {
  const id = await resolveId(db, tenantId, idOrSlug);
  const after = decodeCursor(options.cursor, { v: 'text' });
  const before = after ? Number(after.v) : null;
  if (before !== null && !Number.isSafeInteger(before)) throw invalid('malformed cursor: drop it and start from the first page', 'validation_failed');
  const { rows } = await db.query<TemplateVersionView & { created_at: Date }>(
    `SELECT template_id, version, name, subject, html, text_body AS text, created_at FROM template_versions
      WHERE tenant_id = $1 AND template_id = $2 AND ($3::int IS NULL OR version < $3) ORDER BY version DESC LIMIT $4`,
    [tenantId, id, before, options.limit + 1],
  );
  const more = rows.length > options.limit;
  const data = more ? rows.slice(0, options.limit) : rows;
  return { data: data.map(versionView), nextCursor: more ? encodeCursor({ v: String(data[data.length - 1].version) }) : null };
}

/** One version (the current one when `version` is undefined). */
export async function getTemplateVersion(db: Queryable, tenantId: string, idOrSlug: string, version?: number): Promise<TemplateVersionView> {
  const id = await resolveId(db, tenantId, idOrSlug);
  const { rows } = await db.query<TemplateVersionView & { created_at: Date }>(
    `SELECT v.template_id, v.version, v.name, v.subject, v.html, v.text_body AS text, v.created_at
       FROM templates t JOIN template_versions v ON v.template_id = t.id AND v.version = coalesce($3::int, t.current_version)
      WHERE t.tenant_id = $1 AND t.id = $2`,
    [tenantId, id, version ?? null],
  );
  if (!rows[0]) throw new DomainError('not_found', 'not_found', `template ${idOrSlug.slice(0, 100)} has no version ${version}`);
  return versionView(rows[0]);
}

/** A version's Liquid sources as the sandbox takes them. */
export function sourceOf(v: Pick<TemplateVersionView, 'subject' | 'html' | 'text'>): TemplateSource {
  return { subject: v.subject, ...(v.html ? { html: v.html } : {}), ...(v.text ? { text: v.text } : {}) };
}

/** Renders in a render thread (src/jobs/render.ts): the API's event loop never runs tenant Liquid. */
export interface TemplateRenderer {
  renderTemplate(template: TemplateSource, variables: Record<string, unknown>, options?: { strict?: boolean }): Promise<{ subject: string; html?: string; text?: string }>;
}

/** The check every save runs: the source renders (in a render thread) with no variables. */
export const renderCheck = (renderer: TemplateRenderer): TemplateCheck => (source) => renderer.renderTemplate(source, {});

export interface RenderedVersion {
  template_id: string;
  version: number;
  subject: string;
  html: string | null;
  text: string | null;
}

/**
 * A version (the current one by default) rendered with the caller's variables. With `strict`, a
 * variable the template uses that `variables` lacks is a 422 `missing_variable` naming it.
 */
export async function renderStoredTemplate(
  db: Queryable,
  renderer: TemplateRenderer,
  tenantId: string,
  idOrSlug: string,
  variables: Record<string, unknown>,
  options: { strict?: boolean; version?: number } = {},
): Promise<RenderedVersion> {
  const v = await getTemplateVersion(db, tenantId, idOrSlug, options.version);
  const out = await renderer.renderTemplate(sourceOf(v), variables, { strict: options.strict });
  if (!out.subject) throw invalid('the template rendered an empty subject', 'template_error');
  return { template_id: v.template_id, version: v.version, subject: out.subject, html: out.html ?? null, text: out.text ?? null };
}

/**
 * Integer template ids (migration 025), for APIs that name templates by number (Brevo's
 * `templateId`): a per-tenant sequence, never reused. Another tenant's number is not found.
 */
export async function templateIdByNumber(db: Queryable, tenantId: string, number: number): Promise<string> {
  const { rows } = await db.query<{ id: string }>('SELECT id FROM templates WHERE tenant_id = $1 AND number = $2', [tenantId, number]);
  if (!rows[0]) throw new DomainError('not_found', 'not_found', `template ${number} not found`);
  return rows[0].id;
}

/** The numbers of these templates of the tenant, by template id. */
export async function templateNumbers(db: Queryable, tenantId: string, ids: string[]): Promise<Map<string, number>> {
  const { rows } = await db.query<{ id: string; number: number }>('SELECT id, number FROM templates WHERE tenant_id = $1 AND id = ANY($2::uuid[])', [tenantId, ids]);
  return new Map(rows.map((r) => [r.id, r.number]));
}

/** Current versions with their numbers, by offset (the providers' paging), and the tenant's total. */
export async function listTemplatesByOffset(
  db: Queryable,
  tenantId: string,
  page: { limit: number; offset: number; newestFirst: boolean },
): Promise<{ count: number; data: Array<TemplateView & { number: number }> }> {
  const { rows } = await db.query<TemplateRow & { number: number; total: number }>(
    `${SELECT_CURRENT.replace('SELECT t.id,', 'SELECT count(*) OVER () AS total, t.number, t.id,')}
      WHERE t.tenant_id = $1 ORDER BY t.created_at ${page.newestFirst ? 'DESC' : 'ASC'}, t.id LIMIT $2 OFFSET $3`,
    [tenantId, page.limit, page.offset],
  );
  return { count: rows[0]?.total ?? 0, data: rows.map((r) => ({ ...view(r), number: r.number })) };
}
