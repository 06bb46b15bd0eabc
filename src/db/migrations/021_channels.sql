-- SMS and WhatsApp (src/channels/, docs/sms.md, docs/whatsapp.md): the outbox becomes
-- channel-neutral. A message keeps its row in `messages` (same statuses, claim, leases, retries,
-- timeline); what only a text channel has lives in channel_messages, one row per such message.

-- Mirrored by CHANNELS in src/channels/types.ts.
ALTER TABLE messages
  ADD COLUMN channel  text NOT NULL DEFAULT 'email' CHECK (channel IN ('email', 'sms', 'whatsapp')),
  -- Claim order: higher first (OTP SMS = 1), then due time. 0 for everything else.
  ADD COLUMN priority smallint NOT NULL DEFAULT 0;

-- The claim takes due urgent messages (OTP SMS) first, through this index of only them: email rows
-- (priority 0) never enter it, so the email path writes no extra index entry.
CREATE INDEX messages_due_urgent ON messages (priority DESC, next_attempt_at) WHERE status = 'queued' AND priority > 0;
-- GET /v1/sms and /v1/whatsapp pages, newest first; inbound opt-outs and WhatsApp sessions find a
-- handset's earlier messages. Partial: email rows never enter these indexes.
CREATE INDEX messages_channel_created ON messages (tenant_id, channel, created_at DESC, id DESC) WHERE channel <> 'email';
CREATE INDEX messages_channel_recipient ON messages (recipient, channel) WHERE channel <> 'email';

-- Content of SMS and WhatsApp messages (owned by src/channels/; written in the accepting statement).
CREATE TABLE channel_messages (
  message_id       uuid PRIMARY KEY REFERENCES messages(id),
  tenant_id        uuid NOT NULL,
  channel          text NOT NULL CHECK (channel IN ('sms', 'whatsapp')),
  -- SMS text, or a WhatsApp session text message.
  body             text,
  sender_id        text,
  flow             text CHECK (flow IN ('OTP', 'STANDARD')),
  segments         integer,
  encoding         text CHECK (encoding IN ('GSM-7', 'UCS-2')),
  -- WhatsApp template message: {name, language, components}.
  template         jsonb,
  -- The WhatsApp line (Meta phone_number_id) the message leaves from.
  phone_number_id  text
);

-- Sender IDs: a tenant asks, the operator reviews; only approved ones may send.
CREATE TABLE sms_sender_ids (
  id           uuid PRIMARY KEY,
  tenant_id    uuid NOT NULL REFERENCES tenants(id),
  sender_id    text NOT NULL,
  -- Mirrored by SENDER_ID_STATUSES in src/channels/types.ts.
  status       text NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
  purpose      text,
  review_note  text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  reviewed_at  timestamptz
);
-- One live request or approval per sender id and tenant; a rejected one may be asked for again.
CREATE UNIQUE INDEX sms_sender_ids_live ON sms_sender_ids (tenant_id, sender_id) WHERE status IN ('pending', 'approved');
CREATE INDEX sms_sender_ids_tenant ON sms_sender_ids (tenant_id, created_at DESC);

-- Handsets that answered STOP to this tenant's SMS: no SMS from the tenant until START.
CREATE TABLE sms_opt_outs (
  tenant_id   uuid NOT NULL REFERENCES tenants(id),
  phone       text NOT NULL,
  sender_id   text,
  keyword     text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, phone)
);

-- A tenant's own WhatsApp Cloud line (else the platform default from configuration).
CREATE TABLE whatsapp_lines (
  tenant_id         uuid PRIMARY KEY REFERENCES tenants(id),
  phone_number_id   text UNIQUE,
  -- encryptSecret (src/secrets.ts), bound to the tenant id.
  access_token_enc  text,
  updated_at        timestamptz NOT NULL DEFAULT now()
);

-- The 24 h customer-service window: opened by the handset's last inbound message.
CREATE TABLE whatsapp_sessions (
  tenant_id        uuid NOT NULL REFERENCES tenants(id),
  phone            text NOT NULL,
  last_inbound_at  timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, phone)
);

-- The outbound webhook vocabulary grows by the channels' events (WEBHOOK_EVENT_TYPES mirrors it).
CREATE OR REPLACE FUNCTION webhook_event_types() RETURNS text[]
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT ARRAY[
    'message.sent', 'message.delivered', 'message.delivery_delayed', 'message.bounced', 'message.complained',
    'message.opened', 'message.clicked', 'message.failed', 'message.suppressed',
    'subscription.unsubscribed', 'suppression.created', 'suppression.deleted',
    'send_job.started', 'send_job.completed', 'send_job.failed', 'send_job.cancelled',
    'sms.sent', 'sms.delivered', 'sms.failed', 'sms.opt_out',
    'whatsapp.sent', 'whatsapp.delivered', 'whatsapp.read', 'whatsapp.failed']
$$;

-- The timeline's events become sms.* / whatsapp.* for those channels: webhook_message_events()
-- in src/db/functions/040_webhooks.sql.

