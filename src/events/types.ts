import type { MessageStatus } from '../outbox/status.ts';

/** Timeline types written by provider feedback (the dispatcher writes send, deferral and failure). */
export type EventType =
  | 'provider_send'
  | 'delivery'
  | 'bounce'
  | 'suppression'
  | 'complaint'
  | 'reject'
  | 'delivery_delay'
  | 'open'
  | 'click'
  | 'rendering_failure'
  | 'subscription';

/** What an event does to the recipient's address for its tenant. */
export type SuppressKind = 'hard' | 'soft' | 'complaint' | 'provider';

/**
 * The status an event asks for. Whether it is taken is decided in SQL by message_status_rank(),
 * mirroring src/outbox/status.ts (the one place the order is declared): the rank only ever rises.
 */
export const TARGET_STATUS: Record<EventType, MessageStatus | null> = {
  provider_send: 'sent',
  delivery: 'delivered',
  open: 'opened',
  click: 'clicked',
  bounce: 'bounced',
  complaint: 'complained',
  suppression: 'suppressed',
  reject: 'failed',
  rendering_failure: 'failed',
  delivery_delay: null,
  subscription: null,
};

/** One event for one recipient of one message, whichever input it came from. */
export interface NormalizedEvent {
  /** Our message id (X-Send-Engine-Message-Id), when the input carries it. */
  ourId: string | null;
  /** The provider's message id, or the contract's message_id when it is not ours. */
  providerId: string | null;
  /** A provider id to remember on the message when it has none yet (SNS events only). */
  learnProviderId: string | null;
  /** The tenant the input claims; the message must belong to it, else the event matches nothing. */
  claimedTenant: string | null;
  type: EventType;
  /** Lower-cased address the event is about. */
  recipient: string;
  /** The provider message had several recipients: only the one our message went to applies. */
  recipientStrict: boolean;
  occurredAt: string;
  /** Completes the natural key: the feedback id when the provider gives one, else the time. */
  discriminator: string;
  suppress: SuppressKind | null;
  diagnostic: string | null;
  data: Record<string, unknown>;
}

export type EventOutcome = 'applied' | 'duplicate' | 'unmatched';

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
