import { findUnstorableText } from '../../src/text.ts';
import { fmt } from '../lib.ts';

/**
 * The edge check every request passes (src/http/app.ts: no NUL, no lone surrogate anywhere), on a
 * 1,000-recipient proxy send of 65 KB, against a same-run baseline: the JSON parse and stringify
 * of that body, which Fastify's parser and the pg driver do for the request anyway.
 */
export default async function textCheck() {
  const body = {
    message_type: 'newsletter', from: 'news@acme.example', subject: 'Grüße 😀',
    to: Array.from({ length: 1000 }, (_, i) => `user${i}@example.com`),
    html: '<p>Hallo Welt 😀 </p>'.repeat(1000), text: 'Hallo Welt '.repeat(2000),
    tags: { campaign_id: 'c', site_id: 's', list_id: 'l', segment: 'all' }, idempotency_key: 'k',
  };
  const n = 2000;
  const time = (fn: () => unknown) => {
    for (let i = 0; i < 200; i++) fn();
    const t = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn();
    return Number(process.hrtime.bigint() - t) / n / 1000;
  };
  const baseline = time(() => JSON.parse(JSON.stringify(body)));
  const check = time(() => findUnstorableText(body));
  console.log(`body: ${fmt(JSON.stringify(body).length)} bytes, 1,000 recipients`);
  console.log(`text check: ${fmt(check, 1)} µs/request; baseline JSON round trip: ${fmt(baseline, 1)} µs; ratio ${fmt(check / baseline, 2)}`);
}
