import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../src/ids.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { tenantWithToken } from '../helpers/app.ts';
import {
  CERT_URL, fakeFetcher, makeSigningKey, messageRow, notification, postSns, seedMessages, sesRecord, signEnvelope,
  startEventsApp, suppression, timeline, TOPIC,
} from './helpers.ts';

let database: TestDatabase;
let api: Awaited<ReturnType<typeof startEventsApp>>;
let tenantId: string;
let signing: { key: string; cert: string };
let fetcher: ReturnType<typeof fakeFetcher>;
const OTHER_CERT_URL = 'https://sns.us-east-1.amazonaws.com/SimpleNotificationService-other.pem';

beforeAll(async () => {
  signing = makeSigningKey();
  const stranger = makeSigningKey();
  database = await createTestDatabase();
  fetcher = fakeFetcher({ [CERT_URL]: signing.cert, [OTHER_CERT_URL]: stranger.cert, 'https://evil.example.com/cert.pem': signing.cert, 'http://sns.eu-west-1.amazonaws.com/SimpleNotificationService-test.pem': signing.cert });
  api = await startEventsApp(database.db, database.url, fetcher.fetcher);
  tenantId = (await tenantWithToken(database.db)).tenantId;
});
afterAll(async () => {
  await api.close();
  await database.drop();
});

async function one() {
  const { ids, recipients } = await seedMessages(database.db, tenantId, 1);
  return { id: ids[0], providerId: `ses-${ids[0]}`, recipient: recipients[0] };
}

describe('POST /webhooks/ses with Amazon SNS messages', () => {
  it('accepts SignatureVersion 1 and 2 and fetches the certificate once', async () => {
    const m = await one();
    const v1 = await postSns(api.baseUrl, notification(sesRecord('Delivery', m.providerId, m.recipient, { delivery: { timestamp: '2025-03-01T10:00:01Z', recipients: [m.recipient], smtpResponse: '250 ok' } }), signing.key, '1'));
    expect(v1).toMatchObject({ status: 200, json: { status: 'processed' } });
    const v2 = await postSns(api.baseUrl, notification(sesRecord('Open', m.providerId, m.recipient, { open: { timestamp: '2025-03-01T11:00:00Z', userAgent: 'Mail/1.0', ipAddress: '192.0.2.1' } }), signing.key, '2'));
    expect(v2).toMatchObject({ status: 200, json: { status: 'processed' } });
    expect((await messageRow(database.db, m.id)).status).toBe('opened');
    expect(fetcher.calls.filter((u) => u === CERT_URL)).toHaveLength(1);
  });

  it('rejects a tampered field, a foreign key, a wrong certificate host, an http URL and a bad version', async () => {
    const m = await one();
    const record = sesRecord('Complaint', m.providerId, m.recipient, { complaint: { timestamp: '2025-03-01T10:00:00Z', feedbackId: 'fb-1', complainedRecipients: [{ emailAddress: m.recipient }] } });
    const good = notification(record, signing.key, '2');
    const cases: [string, unknown, number][] = [
      ['tampered message', { ...good, Message: good.Message.replace('Complaint', 'Delivery') }, 401],
      ['tampered timestamp', { ...good, Timestamp: new Date(0).toISOString() }, 401],
      ['signed as v2, claims v1', { ...good, SignatureVersion: '1' }, 401],
      ['a stranger\'s certificate', notification(record, makeSigningKey().key, '1', { SigningCertURL: OTHER_CERT_URL }), 401],
      ['certificate on another host', notification(record, signing.key, '1', { SigningCertURL: 'https://evil.example.com/cert.pem' }), 401],
      ['look-alike host', notification(record, signing.key, '1', { SigningCertURL: 'https://sns.eu-west-1.amazonaws.com.evil.example/x.pem' }), 401],
      ['http certificate URL', notification(record, signing.key, '1', { SigningCertURL: 'http://sns.eu-west-1.amazonaws.com/SimpleNotificationService-test.pem' }), 401],
      ['not a .pem', notification(record, signing.key, '1', { SigningCertURL: 'https://sns.eu-west-1.amazonaws.com/cert.txt' }), 401],
      ['unknown topic', notification(record, signing.key, '1', { TopicArn: 'arn:aws:sns:eu-west-1:999999999999:someone-else' }), 403],
      ['unknown version', { ...good, SignatureVersion: '3' }, 422],
      ['no signature', { ...good, Signature: undefined }, 422],
    ];
    for (const [name, body, status] of cases) {
      const res = await postSns(api.baseUrl, body, 'Notification');
      expect(res.status, name).toBe(status);
      expect(typeof res.json.request_id, name).toBe('string');
      // The reason, not only the status: a 422 here is a malformed envelope, a 403 an unknown topic.
      expect(res.json.error, name).toBe({ 401: 'unauthorized', 403: 'unknown_topic', 422: 'validation_error' }[status]);
    }
    // None of those fetched anything but SNS-hosted https .pem URLs, and none wrote anything.
    expect(fetcher.calls.every((u) => u.startsWith('https://sns.') && u.endsWith('.pem'))).toBe(true);
    expect(await timeline(database.db, m.id)).toEqual([]);
    expect(await suppression(database.db, tenantId, m.recipient)).toBeUndefined();
  });

  it('rejects a header type that disagrees with the body as malformed', async () => {
    const m = await one();
    const res = await postSns(api.baseUrl, notification(sesRecord('Send', m.providerId, m.recipient), signing.key), 'SubscriptionConfirmation');
    expect(res.status).toBe(422);
    expect(res.json).toMatchObject({ error: 'validation_error', message: expect.stringContaining('x-amz-sns-message-type') });
  });

  it('confirms a subscription only after its signature verified, through the SNS host only', async () => {
    const subscribeUrl = `https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=${encodeURIComponent(TOPIC)}&Token=tok123`;
    const confirmation = (extra: Record<string, string> = {}) => signEnvelope({
      Type: 'SubscriptionConfirmation', MessageId: newId(), TopicArn: TOPIC, Token: 'tok123', Message: 'You have chosen to subscribe',
      SubscribeURL: subscribeUrl, Timestamp: new Date().toISOString(), ...extra,
    }, signing.key, '2');
    const confirms = () => fetcher.calls.filter((u) => u.includes('Action=ConfirmSubscription')).length;

    const forged = { ...confirmation(), SubscribeURL: `${subscribeUrl}&x=1` };
    expect((await postSns(api.baseUrl, forged)).status).toBe(401);
    expect(confirms()).toBe(0);
    // Signed, but pointing elsewhere: never fetched.
    const elsewhere = await postSns(api.baseUrl, confirmation({ SubscribeURL: 'https://attacker.example/?Action=ConfirmSubscription' }));
    expect(elsewhere.status).toBe(422);
    expect(elsewhere.json.error).toBe('invalid_subscribe_url');
    expect(confirms()).toBe(0);
    // Unknown topic: refused before anything is fetched.
    expect((await postSns(api.baseUrl, confirmation({ TopicArn: 'arn:aws:sns:eu-west-1:1:nope' }))).status).toBe(403);
    // The failed GET (our fake answers 404) is reported, not swallowed.
    expect((await postSns(api.baseUrl, confirmation())).status).toBe(502);
    fetcher.calls.length = 0;
    const ok = fakeFetcher({ [CERT_URL]: signing.cert, [subscribeUrl]: '<ConfirmSubscriptionResponse/>' });
    const app2 = await startEventsApp(database.db, database.url, ok.fetcher);
    try {
      expect(await postSns(app2.baseUrl, confirmation())).toMatchObject({ status: 200, json: { status: 'confirmed' } });
      expect(ok.calls).toEqual([CERT_URL, subscribeUrl]);
      const unsub = signEnvelope({ Type: 'UnsubscribeConfirmation', MessageId: newId(), TopicArn: TOPIC, Token: 't', Message: 'bye', SubscribeURL: subscribeUrl, Timestamp: new Date().toISOString() }, signing.key);
      expect(await postSns(app2.baseUrl, unsub)).toMatchObject({ status: 200, json: { status: 'ignored' } });
      expect(ok.calls.filter((u) => u === subscribeUrl)).toHaveLength(1);
    } finally {
      await app2.close();
    }
  });

  it('maps each SES event type to status, timeline metadata and suppression', async () => {
    const cases = [
      { type: 'Send', detail: { send: {} }, status: 'sent', event: 'provider_send', fromStatus: 'sending' },
      { type: 'Delivery', detail: { delivery: { timestamp: '2025-03-01T10:00:02Z', recipients: ['*'], smtpResponse: '250 2.0.0 OK', reportingMTA: 'a.example' } }, status: 'delivered', event: 'delivery', data: { smtp_response: '250 2.0.0 OK' } },
      { type: 'Bounce', detail: { bounce: { bounceType: 'Permanent', bounceSubType: 'General', feedbackId: 'fb-h', timestamp: '2025-03-01T10:00:03Z', bouncedRecipients: [{ emailAddress: '*', diagnosticCode: 'smtp; 550 5.1.1 user unknown', status: '5.1.1', action: 'failed' }] } }, status: 'bounced', event: 'bounce', data: { bounce_type: 'Permanent', bounce_subtype: 'General', diagnostic: 'smtp; 550 5.1.1 user unknown' }, suppressed: 'hard_bounce' },
      { type: 'Bounce', detail: { bounce: { bounceType: 'Transient', bounceSubType: 'MailboxFull', feedbackId: 'fb-s', timestamp: '2025-03-01T10:00:03Z', bouncedRecipients: [{ emailAddress: '*' }] } }, status: 'bounced', event: 'bounce', data: { bounce_class: 'soft' } },
      { type: 'Bounce', detail: { bounce: { bounceType: 'Permanent', bounceSubType: 'OnAccountSuppressionList', feedbackId: 'fb-p', timestamp: '2025-03-01T10:00:03Z', bouncedRecipients: [{ emailAddress: '*', diagnosticCode: 'Amazon SES did not send the message to this address because it is on the suppression list for your account.' }] } }, status: 'suppressed', event: 'suppression', suppressed: 'provider_suppressed' },
      { type: 'Complaint', detail: { complaint: { feedbackId: 'fb-c', timestamp: '2025-03-01T10:00:04Z', complaintFeedbackType: 'abuse', userAgent: 'Yahoo!-Mail-Feedback/2.0', complainedRecipients: [{ emailAddress: '*' }] } }, status: 'complained', event: 'complaint', data: { feedback_type: 'abuse', user_agent: 'Yahoo!-Mail-Feedback/2.0' }, suppressed: 'complaint' },
      { type: 'Reject', detail: { reject: { reason: 'Bad content' } }, status: 'failed', event: 'reject', data: { reason: 'Bad content' } },
      { type: 'DeliveryDelay', detail: { deliveryDelay: { timestamp: '2025-03-01T10:00:05Z', delayType: 'MailboxFull', expirationTime: '2025-03-02T10:00:00Z', delayedRecipients: [{ emailAddress: '*', status: '4.2.2', diagnosticCode: 'smtp; 452 full' }] } }, status: 'sent', event: 'delivery_delay', data: { delay_type: 'MailboxFull' } },
      { type: 'Open', detail: { open: { timestamp: '2025-03-01T10:00:06Z', userAgent: 'Mozilla/5.0', ipAddress: '192.0.2.2' } }, status: 'opened', event: 'open', data: { user_agent: 'Mozilla/5.0' } },
      { type: 'Click', detail: { click: { timestamp: '2025-03-01T10:00:07Z', link: 'https://example.com/a?b=1', userAgent: 'Mozilla/5.0', ipAddress: '192.0.2.3', linkTags: { k: ['v'] } } }, status: 'clicked', event: 'click', data: { url: 'https://example.com/a?b=1' } },
      { type: 'Rendering Failure', detail: { failure: { errorMessage: 'Attribute missing', templateName: 't1' } }, status: 'failed', event: 'rendering_failure', data: { error: 'Attribute missing' } },
      { type: 'Subscription', detail: { subscription: { contactList: 'news', timestamp: '2025-03-01T10:00:08Z', source: 'UnsubscribeHeader', newTopicPreferences: { unsubscribeAll: true } } }, status: 'sent', event: 'subscription', data: { contact_list: 'news' } },
    ];
    for (const c of cases) {
      const m = await one();
      if (c.fromStatus) await database.db.query('UPDATE messages SET status = $2 WHERE id = $1', [m.id, c.fromStatus]);
      const detail = JSON.parse(JSON.stringify(c.detail).replaceAll('"*"', JSON.stringify(m.recipient)));
      const res = await postSns(api.baseUrl, notification(sesRecord(c.type, m.providerId, m.recipient, detail), signing.key, '2'));
      expect(res, c.type).toMatchObject({ status: 200, json: { status: 'processed' } });
      expect((await messageRow(database.db, m.id)).status, c.type).toBe(c.status);
      const [row] = await timeline(database.db, m.id);
      expect(row.type, c.type).toBe(c.event);
      expect(row.data, c.type).toMatchObject({ source: 'ses', ses_event_type: c.type, ...(c.data ?? {}) });
      expect((await suppression(database.db, tenantId, m.recipient))?.reason, c.type).toBe(c.suppressed);
    }
  });

  it('matches by our X-Send-Engine-Message-Id header and learns the provider id', async () => {
    const m = await one();
    await database.db.query('UPDATE messages SET provider_message_id = NULL WHERE id = $1', [m.id]);
    const record = sesRecord('Delivery', '0100018e-provider-id-000000', m.recipient, { delivery: { timestamp: '2025-03-01T10:00:01Z', recipients: [m.recipient] } },
      [{ name: 'X-Send-Engine-Message-Id', value: m.id }]);
    expect((await postSns(api.baseUrl, notification(record, signing.key))).json.status).toBe('processed');
    expect(await messageRow(database.db, m.id)).toEqual({ status: 'delivered', provider_message_id: '0100018e-provider-id-000000' });
    // A message the engine does not know is acknowledged (SNS would redeliver anything else), not recorded.
    const stray = await postSns(api.baseUrl, notification(sesRecord('Delivery', 'unknown-provider-id', 'x@example.com', { delivery: { timestamp: '2025-03-01T10:00:01Z' } }), signing.key));
    expect(stray).toMatchObject({ status: 200, json: { status: 'ignored' } });
  });

  it('dedupes a redelivered notification and the same bounce under a new SNS message id', async () => {
    const m = await one();
    const record = sesRecord('Bounce', m.providerId, m.recipient, { bounce: { bounceType: 'Transient', bounceSubType: 'General', feedbackId: 'fb-dup', timestamp: '2025-03-01T10:00:00Z', bouncedRecipients: [{ emailAddress: m.recipient }] } });
    const envelope = notification(record, signing.key);
    expect((await postSns(api.baseUrl, envelope)).json.status).toBe('processed');
    expect(await postSns(api.baseUrl, envelope)).toMatchObject({ status: 200, json: { status: 'duplicate' } });
    expect(await postSns(api.baseUrl, notification(record, signing.key, '2'))).toMatchObject({ status: 200, json: { status: 'duplicate' } });
    expect(await timeline(database.db, m.id)).toHaveLength(1);
    const { rows } = await database.db.query('SELECT count(*)::int AS n FROM soft_bounces WHERE tenant_id = $1', [tenantId]);
    expect(rows[0].n).toBeGreaterThanOrEqual(1);
  });

  it('answers 422 to a verified notification whose SES payload is malformed', async () => {
    for (const message of ['not json', JSON.stringify({ eventType: 'Bounce' }), JSON.stringify({ eventType: 'Teleport', mail: { messageId: 'x' } }),
      JSON.stringify(sesRecord('Bounce', 'x', 'a@b.c', { bounce: { timestamp: 'never', bouncedRecipients: [] } }))]) {
      const env = signEnvelope({ Type: 'Notification', MessageId: newId(), TopicArn: TOPIC, Message: message, Timestamp: new Date().toISOString() }, signing.key);
      const res = await postSns(api.baseUrl, env);
      expect(res.status, message).toBe(422);
      expect(res.json.error, message).toBe(message === 'not json' ? 'malformed_body' : 'validation_error');
    }
  });
});
