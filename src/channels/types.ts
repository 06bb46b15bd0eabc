/** Message channels; mirrored by the CHECK on messages.channel (migration 021). */
export const CHANNELS = ['email', 'sms', 'whatsapp'] as const;
export type Channel = (typeof CHANNELS)[number];
/** The channels whose content lives in channel_messages and leaves through src/channels/. */
export type TextChannel = Exclude<Channel, 'email'>;

/** SMS flows; OTP is claimed before STANDARD (messages.priority) and expires when not sent in time. */
export const SMS_FLOWS = ['OTP', 'STANDARD'] as const;
export type SmsFlow = (typeof SMS_FLOWS)[number];
export const FLOW_PRIORITY: Record<SmsFlow, number> = { OTP: 1, STANDARD: 0 };

/** Mirrored by the CHECK on sms_sender_ids.status. */
export const SENDER_ID_STATUSES = ['pending', 'approved', 'rejected'] as const;
export type SenderIdStatus = (typeof SENDER_ID_STATUSES)[number];

/** The states the SMS/WhatsApp API shows (the reference's vocabulary). */
export const CHANNEL_STATES = ['QUEUED', 'PROCESSING', 'SENT', 'DELIVERED', 'READ', 'FAILED'] as const;
export type ChannelState = (typeof CHANNEL_STATES)[number];

/**
 * The one mapping between our message statuses and the channel API's states. Everything that ended
 * without reaching the handset (failed, expired OTP, opted out, cancelled) is FAILED.
 */
export const STATE_OF_STATUS: Record<string, ChannelState> = {
  queued: 'QUEUED',
  sending: 'PROCESSING',
  sent: 'SENT',
  delivered: 'DELIVERED',
  opened: 'READ',
  clicked: 'READ',
  failed: 'FAILED',
  expired: 'FAILED',
  suppressed: 'FAILED',
  cancelled: 'FAILED',
  bounced: 'FAILED',
  complained: 'FAILED',
};

/** The statuses a state filter stands for (GET /v1/sms?status=FAILED). */
export function statusesOfState(state: ChannelState): string[] {
  return Object.entries(STATE_OF_STATUS).filter(([, s]) => s === state).map(([status]) => status);
}

/** A claimed SMS or WhatsApp message, as the dispatcher hands it to its channel's transport. */
export interface ChannelContent {
  body: string | null;
  senderId: string | null;
  flow: SmsFlow | null;
  segments: number | null;
  template: WhatsAppTemplate | null;
  phoneNumberId: string | null;
}

export interface WhatsAppTemplate {
  name: string;
  language: string;
  /** Graph API template components (header/body/button parameters), passed through. */
  components?: unknown[];
}

export interface ChannelSend {
  id: string;
  tenantId: string;
  recipient: string;
  content: ChannelContent;
}

/** A channel's provider: the dispatcher calls it for claimed messages of its channel. */
export interface ChannelTransport {
  readonly name: string;
  /** Resolves with the provider's message id; throws a TransportError otherwise. */
  send(message: ChannelSend, options?: { signal?: AbortSignal }): Promise<{ providerMessageId: string }>;
  close(): Promise<void>;
}

export type ChannelTransports = Partial<Record<TextChannel, ChannelTransport>>;

/** A provider's word on a message (SMPP deliver_sm, DLR callback, Twilio status, Graph API status). */
export interface Receipt {
  channel: TextChannel;
  providerMessageId: string;
  outcome: 'sent' | 'delivered' | 'read' | 'failed';
  occurredAt?: Date;
  error?: string;
}
