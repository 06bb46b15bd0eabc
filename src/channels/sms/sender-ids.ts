import type { Queryable } from '../../db/pool.ts';
import { DomainError, invalid } from '../../errors.ts';
import { newId } from '../../ids.ts';
import type { SenderIdStatus } from '../types.ts';

export interface SenderIdRequest {
  id: string;
  sender_id: string;
  status: SenderIdStatus;
  purpose: string | null;
  review_note: string | null;
  created_at: string;
  reviewed_at: string | null;
}

interface SenderIdRow {
  id: string;
  sender_id: string;
  status: SenderIdStatus;
  purpose: string | null;
  review_note: string | null;
  created_at: Date;
  reviewed_at: Date | null;
}

const view = (r: SenderIdRow): SenderIdRequest => ({
  ...r, created_at: r.created_at.toISOString(), reviewed_at: r.reviewed_at?.toISOString() ?? null,
});

/** Alphanumeric sender (up to 11 characters, at least one letter) or a numeric one (short code or E.164, up to 15 digits). */
export function checkSenderId(senderId: string) {
  if (!/^(?=.*[A-Za-z])[A-Za-z0-9 .-]{1,11}$|^\+?\d{3,15}$/.test(senderId)) {
    throw invalid('senderId must be 1-11 letters/digits (with at least one letter) or a number of 3-15 digits', 'invalid_sender_id');
  }
}

export async function requestSenderId(db: Queryable, tenantId: string, senderId: string, purpose?: string): Promise<SenderIdRequest> {
  checkSenderId(senderId);
  const { rows } = await db.query<SenderIdRow>(
    `INSERT INTO sms_sender_ids (id, tenant_id, sender_id, status, purpose) VALUES ($1, $2, $3, 'pending', $4)
     ON CONFLICT (tenant_id, sender_id) WHERE status IN ('pending', 'approved') DO NOTHING
     RETURNING id, sender_id, status, purpose, review_note, created_at, reviewed_at`,
    [newId(), tenantId, senderId, purpose ?? null],
  );
  if (!rows.length) throw new DomainError('conflict', 'sender_id_already_requested', `sender id ${senderId} is already pending or approved`);
  return view(rows[0]);
}

/** The operator's decision on a pending request (any tenant's: the operator is not a tenant). */
export async function reviewSenderId(db: Queryable, requestId: string, decision: 'approve' | 'reject', note?: string): Promise<SenderIdRequest> {
  const { rows } = await db.query<SenderIdRow & { was: SenderIdStatus }>(
    `WITH target AS (SELECT id, status AS was FROM sms_sender_ids WHERE id = $1 FOR UPDATE),
     reviewed AS (
       UPDATE sms_sender_ids s SET status = $2, review_note = $3, reviewed_at = now()
         FROM target t WHERE s.id = t.id AND t.was = 'pending'
       RETURNING s.id, s.sender_id, s.status, s.purpose, s.review_note, s.created_at, s.reviewed_at
     )
     SELECT r.*, t.was FROM target t LEFT JOIN reviewed r ON true`,
    [requestId, decision === 'approve' ? 'approved' : 'rejected', note ?? null],
  );
  if (!rows.length) throw new DomainError('not_found', 'not_found', 'sender id request not found');
  if (!rows[0].id) throw new DomainError('conflict', 'sender_id_already_reviewed', `this request was already ${rows[0].was}`);
  return view(rows[0]);
}

export async function listSenderIds(db: Queryable, tenantId: string, status?: SenderIdStatus): Promise<SenderIdRequest[]> {
  const { rows } = await db.query<SenderIdRow>(
    `SELECT id, sender_id, status, purpose, review_note, created_at, reviewed_at FROM sms_sender_ids
      WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2) ORDER BY created_at DESC LIMIT 500`,
    [tenantId, status ?? null],
  );
  return rows.map(view);
}

export async function assertApprovedSenderId(db: Queryable, tenantId: string, senderId: string) {
  const { rowCount } = await db.query(`SELECT 1 FROM sms_sender_ids WHERE tenant_id = $1 AND sender_id = $2 AND status = 'approved'`, [tenantId, senderId]);
  if (!rowCount) throw invalid(`senderId ${senderId} is not approved for this account (POST /v1/sms/sender-id-requests)`, 'sender_id_not_approved');
}
