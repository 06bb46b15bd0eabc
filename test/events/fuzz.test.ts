import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tenantWithToken } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { CERT_URL, fakeFetcher, hmac, makeSigningKey, seedMessages, signEnvelope, startEventsApp, TOPIC } from './helpers.ts';

let database: TestDatabase;
let api: Awaited<ReturnType<typeof startEventsApp>>;
let tenantId: string;
let ids: string[];
let recipients: string[];
let key: string;

beforeAll(async () => {
  const signing = makeSigningKey();
  key = signing.key;
  database = await createTestDatabase();
  api = await startEventsApp(database.db, database.url, fakeFetcher({ [CERT_URL]: signing.cert }).fetcher);
  tenantId = (await tenantWithToken(database.db)).tenantId;
  ({ ids, recipients } = await seedMessages(database.db, tenantId, 5));
});
afterAll(async () => {
  await api.close();
  await database.drop();
});

/** Everything the endpoint may write, in one comparable value. */
async function fingerprint() {
  const { rows } = await database.db.query(`SELECT
    (SELECT count(*) FROM message_events) AS events, (SELECT count(*) FROM suppressions) AS suppressions,
    (SELECT count(*) FROM soft_bounces) AS soft, (SELECT coalesce(sum(hard_bounced + soft_bounced + delivered + opened + clicked + complained), 0) FROM tenant_event_counters) AS counted,
    (SELECT string_agg(status || coalesce(provider_message_id, ''), ',' ORDER BY id) FROM messages) AS statuses,
    (SELECT count(*) FROM tenants WHERE newsletter_paused_at IS NOT NULL) AS paused`);
  return rows[0];
}

async function post(raw: string, headers: Record<string, string>) {
  const before = await fingerprint();
  const res = await fetch(`${api.baseUrl}/webhooks/ses`, { method: 'POST', headers, body: raw });
  const text = await res.text();
  expect(res.status === 200 || (res.status >= 400 && res.status < 500), `${res.status} ${text} for ${raw.slice(0, 300)}`).toBe(true);
  if (res.status !== 200) {
    expect(JSON.parse(text).request_id).toBe(res.headers.get('x-request-id'));
    expect(await fingerprint()).toEqual(before);
  }
  return res.status;
}

// Values near the valid ones, and anything at all.
const near = <T>(valid: fc.Arbitrary<T>) => fc.oneof({ weight: 3, arbitrary: valid }, { weight: 1, arbitrary: fc.anything() });
const weirdString = fc.string({ unit: fc.oneof(fc.constantFrom('\u0000', '\ud800', '\udc00', '😀', 'é', '"', '\\'), fc.string({ minLength: 1, maxLength: 1 })), maxLength: 40 });

describe('webhook parser fuzzing', () => {
  it('answers any HMAC-signed body with 200 or a 4xx, and writes nothing unless it answers 200', async () => {
    const seen = new Set<number>();
    const contractish = fc.record(
      {
        event_type: near(fc.constantFrom('bounce', 'hard_bounced', 'soft_bounced', 'complaint', 'suppression', 'delivery', 'open', 'click', 'x')),
        message_id: near(fc.oneof(fc.constantFrom(...ids), fc.constantFrom(...ids.map((i) => `ses-${i}`)), fc.uuid(), weirdString)),
        tenant_id: near(fc.oneof(fc.constant(tenantId), fc.uuid(), weirdString)),
        email: near(fc.oneof(fc.constantFrom(...recipients), fc.emailAddress(), weirdString)),
        bounce_type: near(fc.constantFrom('hard', 'soft')),
        occurred_at: near(fc.oneof(fc.date({ noInvalidDate: true }).map((d) => d.toISOString()), fc.constantFrom('2025-03-01T10:00:00Z', '+275760-09-13T00:00:00.000Z', '2025-02-30T00:00:00Z'), weirdString)),
      },
      { requiredKeys: [] },
    );
    await fc.assert(
      fc.asyncProperty(fc.oneof({ weight: 4, arbitrary: contractish.map((b) => JSON.stringify(b)) }, { weight: 1, arbitrary: fc.json() }, { weight: 1, arbitrary: fc.string() }), async (raw) => {
        seen.add(await post(raw, { 'content-type': 'application/json', 'x-amz-sns-signature': hmac(raw) }));
      }),
      { numRuns: 300 },
    );
    // Fuzzed bodies are rarely complete events: a valid one and one for an unknown message make
    // sure the 200 and 404 paths ran too, beside the 422s the fuzz produces.
    const event = (message_id: string) => JSON.stringify({ event_type: 'delivery', message_id, tenant_id: tenantId, email: recipients[0], occurred_at: '2025-03-01T10:00:00Z' });
    for (const raw of [event(ids[0]), event('01890000-0000-7000-8000-00000000dead')]) {
      seen.add(await post(raw, { 'content-type': 'application/json', 'x-amz-sns-signature': hmac(raw) }));
    }
    expect([...seen].sort()).toEqual(expect.arrayContaining([200, 404, 422]));
    // Signed bodies are never refused as unauthenticated.
    expect(seen.has(401)).toBe(false);
  });

  it('answers any SNS-looking body with 200 or a 4xx, and writes nothing unless it answers 200', async () => {
    const seen = new Set<number>();
    const sesish = fc.record(
      {
        eventType: near(fc.constantFrom('Send', 'Delivery', 'Bounce', 'Complaint', 'Reject', 'DeliveryDelay', 'Open', 'Click', 'Rendering Failure', 'Subscription')),
        mail: near(fc.record({
          messageId: near(fc.constantFrom(...ids.map((i) => `ses-${i}`))),
          timestamp: near(fc.constant('2025-03-01T10:00:00Z')),
          destination: near(fc.array(near(fc.constantFrom(...recipients)), { maxLength: 3 })),
          headers: near(fc.array(fc.record({ name: near(fc.constant('X-Send-Engine-Message-Id')), value: near(fc.constantFrom(...ids)) }), { maxLength: 2 })),
        }, { requiredKeys: [] })),
        bounce: near(fc.record({ bounceType: near(fc.constantFrom('Permanent', 'Transient', 'Undetermined')), bounceSubType: near(fc.constantFrom('General', 'OnAccountSuppressionList')),
          timestamp: near(fc.constant('2025-03-01T10:00:00Z')), feedbackId: near(weirdString), bouncedRecipients: near(fc.array(fc.record({ emailAddress: near(fc.constantFrom(...recipients)), diagnosticCode: near(weirdString) }), { maxLength: 3 })) }, { requiredKeys: [] })),
        complaint: near(fc.record({ timestamp: near(fc.constant('2025-03-01T10:00:00Z')), complainedRecipients: near(fc.array(fc.record({ emailAddress: near(fc.constantFrom(...recipients)) }), { maxLength: 2 })), userAgent: near(weirdString) }, { requiredKeys: [] })),
        delivery: near(fc.record({ timestamp: near(fc.constant('2025-03-01T10:00:00Z')), recipients: near(fc.array(near(fc.constantFrom(...recipients)), { maxLength: 2 })) }, { requiredKeys: [] })),
        click: near(fc.record({ timestamp: near(fc.constant('2025-03-01T10:00:00Z')), link: near(weirdString), linkTags: fc.anything() }, { requiredKeys: [] })),
      },
      { requiredKeys: [] },
    );
    const typed = fc.constantFrom('Notification', 'SubscriptionConfirmation', 'UnsubscribeConfirmation', 'Other');
    // Correctly signed envelopes around fuzzed SES payloads, and fuzzed (unsigned) envelopes.
    const signed = fc.tuple(sesish, fc.constantFrom('1', '2') as fc.Arbitrary<'1' | '2'>).map(([ses, v]) => ({
      type: 'Notification',
      body: JSON.stringify(signEnvelope({ Type: 'Notification', MessageId: 'm', TopicArn: TOPIC, Message: JSON.stringify(ses), Timestamp: '2025-03-01T10:00:00Z' }, key, v)),
    }));
    const forged = fc.tuple(typed, fc.boolean(), fc.record({ Type: near(typed), MessageId: near(fc.string()), TopicArn: near(fc.constant(TOPIC)), Message: near(fc.json()),
      Timestamp: near(fc.string()), SignatureVersion: near(fc.constantFrom('1', '2')), Signature: near(fc.base64String()),
      SigningCertURL: near(fc.constantFrom(CERT_URL, 'https://sns.eu-west-1.amazonaws.com/x.pem', 'http://x', 'https://sns.eu-west-1.amazonaws.com:444/x.pem')),
      SubscribeURL: near(fc.webUrl()), Token: near(fc.string()) }, { requiredKeys: ['Type', 'MessageId', 'TopicArn', 'Timestamp', 'SignatureVersion', 'Signature', 'SigningCertURL'] })).map(([type, sameType, body]) => ({ type: sameType && typeof body.Type === 'string' ? body.Type : type, body: JSON.stringify(body) }));
    await fc.assert(
      fc.asyncProperty(fc.oneof(signed, forged, fc.tuple(typed, fc.string()).map(([type, body]) => ({ type, body }))), async ({ type, body }) => {
        seen.add(await post(body, { 'content-type': 'text/plain; charset=UTF-8', 'x-amz-sns-message-type': type }));
      }),
      { numRuns: 300 },
    );
    // Fuzzed payloads are rarely complete SES events; one that is makes sure the 200 path ran too.
    const valid = { eventType: 'Delivery', mail: { messageId: `ses-${ids[0]}`, timestamp: '2025-03-01T10:00:00Z', destination: [recipients[0]] }, delivery: { timestamp: '2025-03-01T10:00:01Z', recipients: [recipients[0]] } };
    seen.add(await post(JSON.stringify(signEnvelope({ Type: 'Notification', MessageId: 'm', TopicArn: TOPIC, Message: JSON.stringify(valid), Timestamp: '2025-03-01T10:00:00Z' }, key, '2')), { 'content-type': 'text/plain; charset=UTF-8', 'x-amz-sns-message-type': 'Notification' }));
    expect([...seen].sort()).toEqual(expect.arrayContaining([200, 401, 422]));
  });
});
