import type { Db, Queryable } from '../db/pool.ts';
import { withTransaction } from '../db/pool.ts';
import { DomainError } from '../errors.ts';
import { newId } from '../ids.ts';
import { decodeCursor, encodeCursor } from '../observability/cursor.ts';
import type { Page } from '../observability/messages.ts';
import { WEBHOOK_CHANNEL, type DeliveryStatus, type EndpointStatus, type WebhookEventType } from './event-types.ts';
import { urlProblem } from './http-client.ts';
import { newSigningSecret, type SecretBox } from './secret-box.ts';

/** How long the previous secret keeps signing after a rotation. */
export const SECRET_ROTATION_GRACE_HOURS = 24;

export interface EndpointView {
  id: string;
  url: string;
  /** null: every event type. */
  event_types: WebhookEventType[] | null;
  description: string | null;
  status: EndpointStatus;
  disabled_reason: string | null;
  created_at: string;
  updated_at: string;
}

interface EndpointRow {
  id: string;
  url: string;
  event_types: WebhookEventType[] | null;
  description: string | null;
  status: EndpointStatus;
  disabled_reason: string | null;
  created_at: Date;
  updated_at: Date;
  position: string;
}

const ENDPOINT_COLUMNS = 'id, url, event_types, description, status, disabled_reason, created_at, updated_at, created_at::text AS position';

const endpointView = (r: EndpointRow): EndpointView => ({
  id: r.id,
  url: r.url,
  event_types: r.event_types,
  description: r.description,
  status: r.status,
  disabled_reason: r.disabled_reason,
  created_at: r.created_at.toISOString(),
  updated_at: r.updated_at.toISOString(),
});

export interface EndpointInput {
  url: string;
  event_types?: WebhookEventType[] | null;
  description?: string | null;
}

function checkUrl(url: string, allowPrivate: boolean) {
  const problem = urlProblem(url, allowPrivate);
  if (problem) throw new DomainError('invalid', 'invalid_url', problem);
}

const eventTypes = (types: WebhookEventType[] | null | undefined) => (types?.length ? [...new Set(types)] : null);

const notFound = (what: string, id: string) => new DomainError('not_found', 'not_found', `${what} ${id} not found`);

/** Registers an endpoint; the answer carries its signing secret, the only time it is shown. */
export async function createEndpoint(db: Queryable, box: SecretBox, tenantId: string, input: EndpointInput, allowPrivate: boolean) {
  checkUrl(input.url, allowPrivate);
  const secret = newSigningSecret();
  const { rows } = await db.query<EndpointRow>(
    `INSERT INTO webhook_endpoints (id, tenant_id, url, event_types, description, status, secret_enc)
     VALUES ($1, $2, $3, $4, $5, 'enabled', $6) RETURNING ${ENDPOINT_COLUMNS}`,
    [newId(), tenantId, input.url, eventTypes(input.event_types), input.description ?? null, box.seal(secret)],
  );
  return { ...endpointView(rows[0]), secret };
}

export async function listEndpoints(db: Queryable, tenantId: string, options: { limit: number; cursor?: string }): Promise<Page<EndpointView>> {
  const after = decodeCursor(options.cursor, { t: 'time', i: 'uuid' });
  const { rows } = await db.query<EndpointRow>(
    `SELECT ${ENDPOINT_COLUMNS} FROM webhook_endpoints
      WHERE tenant_id = $1 AND ($2::timestamptz IS NULL OR (created_at, id) < ($2::timestamptz, $3::uuid))
      ORDER BY created_at DESC, id DESC LIMIT $4`,
    [tenantId, after?.t ?? null, after?.i ?? null, options.limit + 1],
  );
  const more = rows.length > options.limit;
  const page = more ? rows.slice(0, options.limit) : rows;
  const last = page[page.length - 1];
  return { data: page.map(endpointView), nextCursor: more ? encodeCursor({ t: last.position, i: last.id }) : null };
}

export async function getEndpoint(db: Queryable, tenantId: string, id: string): Promise<EndpointView> {
  const { rows } = await db.query<EndpointRow>(`SELECT ${ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2`, [tenantId, id]);
  if (!rows.length) throw notFound('webhook endpoint', id);
  return endpointView(rows[0]);
}

export interface EndpointPatch {
  url?: string;
  event_types?: WebhookEventType[] | null;
  description?: string | null;
  status?: EndpointStatus;
}

/** Changes what is given. Enabling clears the disabled reason and the failure streak; what was owed resumes. */
export async function updateEndpoint(db: Db, tenantId: string, id: string, patch: EndpointPatch, allowPrivate: boolean): Promise<EndpointView> {
  if (patch.url !== undefined) checkUrl(patch.url, allowPrivate);
  const { rows } = await db.query<EndpointRow>(
    `UPDATE webhook_endpoints SET
            url = CASE WHEN $3 THEN $4 ELSE url END,
            event_types = CASE WHEN $5 THEN $6::text[] ELSE event_types END,
            description = CASE WHEN $7 THEN $8 ELSE description END,
            status = coalesce($9, status),
            disabled_reason = CASE WHEN $9 = 'enabled' THEN NULL WHEN $9 = 'disabled' AND status = 'enabled' THEN 'disabled by request' ELSE disabled_reason END,
            failing_since = CASE WHEN $9 = 'enabled' THEN NULL ELSE failing_since END,
            updated_at = now()
      WHERE tenant_id = $1 AND id = $2
      RETURNING ${ENDPOINT_COLUMNS}`,
    [
      tenantId, id,
      patch.url !== undefined, patch.url ?? null,
      patch.event_types !== undefined, eventTypes(patch.event_types),
      patch.description !== undefined, patch.description ?? null,
      patch.status ?? null,
    ],
  );
  if (!rows.length) throw notFound('webhook endpoint', id);
  if (patch.status === 'enabled') await db.query(`SELECT pg_notify('${WEBHOOK_CHANNEL}', '')`);
  return endpointView(rows[0]);
}

/** Deletes an endpoint and everything owed to it. */
export async function deleteEndpoint(db: Db, tenantId: string, id: string): Promise<void> {
  await withTransaction(db, async (client) => {
    const { rowCount } = await client.query('DELETE FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2', [tenantId, id]);
    if (!rowCount) throw notFound('webhook endpoint', id);
    await client.query('DELETE FROM webhook_deliveries WHERE endpoint_id = $1', [id]);
  });
}

/** A new secret; the current one keeps signing beside it for SECRET_ROTATION_GRACE_HOURS. */
export async function rotateEndpointSecret(db: Queryable, box: SecretBox, tenantId: string, id: string) {
  const secret = newSigningSecret();
  const { rows } = await db.query<{ id: string; old_secret_expires_at: Date }>(
    `UPDATE webhook_endpoints
        SET old_secret_enc = secret_enc, secret_enc = $3,
            old_secret_expires_at = now() + make_interval(hours => $4), updated_at = now()
      WHERE tenant_id = $1 AND id = $2
      RETURNING id, old_secret_expires_at`,
    [tenantId, id, box.seal(secret), SECRET_ROTATION_GRACE_HOURS],
  );
  if (!rows.length) throw notFound('webhook endpoint', id);
  return { id: rows[0].id, secret, previous_secret_expires_at: rows[0].old_secret_expires_at.toISOString() };
}

export interface DeliveryView {
  id: string;
  endpoint_id: string;
  event_id: string;
  event_type: string;
  status: DeliveryStatus;
  attempts: number;
  response_status: number | null;
  latency_ms: number | null;
  response_excerpt: string | null;
  error: string | null;
  next_attempt_at: string | null;
  last_attempt_at: string | null;
  delivered_at: string | null;
  created_at: string;
}

interface DeliveryRow {
  id: string;
  endpoint_id: string;
  event_id: string;
  event_type: string;
  status: DeliveryStatus;
  attempts: number;
  response_status: number | null;
  latency_ms: number | null;
  response_excerpt: string | null;
  last_error: string | null;
  next_attempt_at: Date;
  last_attempt_at: Date | null;
  delivered_at: Date | null;
  event_created_at: Date;
}

/** The excerpt the API shows (the row keeps up to the client's cap). */
const EXCERPT_CHARS = 500;

const deliveryView = (r: DeliveryRow): DeliveryView => ({
  id: r.id,
  endpoint_id: r.endpoint_id,
  event_id: r.event_id,
  event_type: r.event_type,
  status: r.status,
  attempts: r.attempts,
  response_status: r.response_status,
  latency_ms: r.latency_ms,
  response_excerpt: r.response_excerpt === null ? null : r.response_excerpt.slice(0, EXCERPT_CHARS),
  error: r.last_error,
  next_attempt_at: r.status === 'pending' ? r.next_attempt_at.toISOString() : null,
  last_attempt_at: r.last_attempt_at?.toISOString() ?? null,
  delivered_at: r.delivered_at?.toISOString() ?? null,
  created_at: r.event_created_at.toISOString(),
});

const DELIVERY_COLUMNS = `id, endpoint_id, event_id, event_type, status, attempts, response_status, latency_ms, response_excerpt,
  last_error, next_attempt_at, last_attempt_at, delivered_at, event_created_at`;

/** An endpoint's deliveries, newest first (ids are time-ordered). */
export async function listDeliveries(
  db: Queryable,
  tenantId: string,
  endpointId: string,
  options: { limit: number; cursor?: string; status?: DeliveryStatus },
): Promise<Page<DeliveryView>> {
  await getEndpoint(db, tenantId, endpointId);
  const after = decodeCursor(options.cursor, { i: 'uuid' });
  const { rows } = await db.query<DeliveryRow>(
    `SELECT ${DELIVERY_COLUMNS} FROM webhook_deliveries
      WHERE endpoint_id = $1 AND tenant_id = $2 AND ($3::uuid IS NULL OR id < $3) AND ($4::text IS NULL OR status = $4)
      ORDER BY id DESC LIMIT $5`,
    [endpointId, tenantId, after?.i ?? null, options.status ?? null, options.limit + 1],
  );
  const more = rows.length > options.limit;
  const page = more ? rows.slice(0, options.limit) : rows;
  return { data: page.map(deliveryView), nextCursor: more ? encodeCursor({ i: page[page.length - 1].id }) : null };
}

/** Makes a delivery due now (a manual redelivery, also after success or exhaustion: one more attempt). */
export async function retryDelivery(db: Queryable, tenantId: string, id: string): Promise<DeliveryView> {
  const { rows } = await db.query<DeliveryRow & { endpoint_status: EndpointStatus; was: DeliveryStatus }>(
    `WITH target AS (
       SELECT d.id, d.status AS was, e.status AS endpoint_status
         FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
        WHERE d.tenant_id = $1 AND d.id = $2
     ), upd AS (
       UPDATE webhook_deliveries d SET status = 'pending', next_attempt_at = now()
         FROM target t
        WHERE d.id = t.id AND t.was <> 'delivering' AND t.endpoint_status = 'enabled'
       RETURNING d.*
     ), woke AS (
       SELECT pg_notify('${WEBHOOK_CHANNEL}', '') FROM upd
     )
     SELECT upd.*, t.was, t.endpoint_status, (SELECT count(*) FROM woke) AS woke FROM target t LEFT JOIN upd ON upd.id = t.id`,
    [tenantId, id],
  );
  if (!rows.length) throw notFound('webhook delivery', id);
  const r = rows[0];
  if (r.was === 'delivering') throw new DomainError('conflict', 'delivery_in_progress', 'the delivery is being attempted right now');
  if (r.endpoint_status !== 'enabled') throw new DomainError('conflict', 'endpoint_disabled', 'the endpoint is disabled: enable it first (PATCH status enabled)');
  return deliveryView(r);
}
