import { generateKeyPairSync } from 'node:crypto';
import { authenticate } from 'mailauth';
import { simpleParser, type ParsedMail } from 'mailparser';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import { describe, expect, it } from 'vitest';
import { composeMessage, composerFor, listUnsubscribeHeaders, quotedPrintable, type MessageToCompose, type Signing } from '../../src/sending/compose.ts';
import { bodyHash, canonicalBodyRelaxed, signRaw } from '../../src/sending/dkim.ts';

/** How messages were composed before (nodemailer's MailComposer): the reference for meaning. */
async function composeWithMailComposer(m: MessageToCompose): Promise<Buffer> {
  const domain = m.from.slice(m.from.lastIndexOf('@') + 1);
  const mail = new MailComposer({
    from: m.from,
    to: m.recipient,
    subject: m.subject,
    html: m.html || undefined,
    text: m.text || undefined,
    messageId: `<${m.id}@${domain}>`,
    textEncoding: 'quoted-printable',
    headers: { ...m.headers, ...(m.listUnsubscribe ? listUnsubscribeHeaders(m.listUnsubscribe) : {}), 'X-Send-Engine-Message-Id': m.id },
  } as ConstructorParameters<typeof MailComposer>[0]);
  return new Promise((resolve, reject) => mail.compile().build((err, raw) => (err ? reject(err) : resolve(raw))));
}

/** What a reader sees of a message: everything but the Date, the boundary and the transfer encoding. */
function meaning(p: ParsedMail) {
  const headers = Object.fromEntries([...p.headers].filter(([k]) => !['date', 'content-type', 'content-transfer-encoding'].includes(k)).map(([k, v]) => [k, JSON.stringify(v)]));
  return { headers, contentType: (p.headers.get('content-type') as { value: string }).value, subject: p.subject, text: p.text, html: p.html, attachments: p.attachments.length };
}

const longLine = `${'Ünïcödé and a very long line without any break at all, '.repeat(30)}end`;
const CASES: Array<[string, Partial<MessageToCompose>]> = [
  ['non-ASCII subject and bodies, multipart/alternative', { subject: 'Grüße aus Köln 🎉 — für {{ email }}', html: '<p>Hallo Zoë, schön dass du da bist. 日本語</p>', text: 'Hallo Zoë,\nschön dass du da bist.\n' }],
  ['long lines, runs of spaces, trailing spaces, tabs, dots and = signs', { subject: `A long ASCII subject ${'word '.repeat(40)}`, html: `<p>${longLine}</p>\n<p>a  b   c \t\n.dot line\n=3D not an escape</p>   \n\n`, text: `${longLine}\r\n trailing   \r\n.\r\n` }],
  ['html only, custom headers with non-ASCII, unsubscribe with mailto', { html: '<b>x</b>', text: null, headers: { 'X-Campaign': 'spring', 'X-Note': 'Grüße' }, listUnsubscribe: { url: 'https://acme.test/u/abc?x=1&y=2', mailto: 'unsub@acme.test' } }],
  ['text only, a non-ASCII recipient', { html: null, text: 'plain', recipient: 'zoë@bücher.example' }],
];

function message(over: Partial<MessageToCompose>): MessageToCompose {
  return { id: '01890000-0000-7000-8000-000000000001', recipient: 'reader@example.com', from: 'news@acme.test', subject: 'Hello', html: '<p>Hi</p>', text: 'Hi', headers: {}, listUnsubscribe: { url: 'https://acme.test/u/token' }, ...over };
}

describe('composeMessage', () => {
  it.each(CASES)('means what MailComposer meant: %s', async (_name, over) => {
    const m = message(over);
    const ours = await composeMessage(m);
    const theirs = await composeWithMailComposer(m);
    expect(meaning(await simpleParser(ours.raw))).toEqual(meaning(await simpleParser(theirs)));
    // Valid as written: CRLF only, no line over 998 octets, and 7-bit apart from a UTF-8 address.
    const text = ours.raw.toString('utf8');
    expect(text.replace(/\r\n/g, '')).not.toMatch(/[\r\n]/);
    for (const line of text.split('\r\n')) expect(Buffer.byteLength(line)).toBeLessThanOrEqual(998);
    const body = text.slice(text.indexOf('\r\n\r\n') + 4);
    for (const line of body.split('\r\n')) expect(line.length).toBeLessThanOrEqual(76);
    expect(body).toMatch(/^[\x20-\x7e\r\n]*$/);
  });

  it('writes per recipient only what differs: same skeleton and encoded parts, different address, ids and links', async () => {
    const a = message({ id: '01890000-0000-7000-8000-00000000000a', recipient: 'a@example.com', listUnsubscribe: { url: 'https://acme.test/u/a' } });
    const b = message({ id: '01890000-0000-7000-8000-00000000000b', recipient: 'b@example.com', listUnsubscribe: { url: 'https://acme.test/u/b' } });
    expect(composerFor(a)).toBe(composerFor(b));
    const [pa, pb] = await Promise.all([composeMessage(a), composeMessage(b)].map(async (p) => simpleParser((await p).raw)));
    expect([pa.to, pb.to].map((t) => (t as { text: string }).text)).toEqual(['a@example.com', 'b@example.com']);
    expect([pa.messageId, pb.messageId]).toEqual(['<01890000-0000-7000-8000-00000000000a@acme.test>', '<01890000-0000-7000-8000-00000000000b@acme.test>']);
    expect([pa.headers.get('list'), pb.headers.get('list')]).toEqual(['a', 'b'].map((u) => ({ unsubscribe: { url: `https://acme.test/u/${u}` }, 'unsubscribe-post': { name: 'List-Unsubscribe=One-Click' } })));
    expect(pa.html).toBe(pb.html);
    // Another sender gets its own composer (and boundary).
    expect(composerFor(message({ from: 'other@acme.test' }))).not.toBe(composerFor(a));
  });
});

describe('quoted-printable', () => {
  it('decodes to the same text and leaves nothing for relaxed canonicalisation to change', () => {
    const samples = ['', 'a', ' ', 'tail \t', '  lead', 'a\t\tb', '=', '==3D', '\r', 'x\ry', '日本語'.repeat(40), `${'z'.repeat(200)}\n${'é'.repeat(100)}`, '.\n..\n'];
    for (const s of samples) {
      const encoded = quotedPrintable(s);
      expect(canonicalBodyRelaxed(`${encoded}\r\n`)).toBe(canonicalBodyRelaxed(`${encoded}\r\n`.replace(/[ \t]+/g, ' ')));
      expect(encoded).not.toMatch(/\t| (\r\n|$)| {2}/);
      expect(Buffer.from(encoded.replace(/=\r\n/g, '').replace(/\r\n/g, '\n').replace(/=([0-9A-F]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16))), 'latin1').toString('utf8')).toBe(s.replace(/\r\n/g, '\n'));
    }
  });
});

describe('DKIM (node:crypto, relaxed/relaxed)', () => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const signing: Signing = { dkim: { domainName: 'acme.test', keySelector: 'sel1', privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string }, envelopeFrom: 'bounce@rp.acme.test' };
  const p = publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
  const verify = (raw: Buffer) =>
    authenticate(raw, {
      resolver: async (name, rr) => {
        if (rr === 'TXT' && name === 'sel1._domainkey.acme.test') return [[`v=DKIM1; k=rsa; p=${p}`]];
        throw Object.assign(new Error(`no ${rr} for ${name}`), { code: 'ENOTFOUND' });
      },
      ip: '127.0.0.1',
      helo: 'localhost',
      sender: signing.envelopeFrom,
      mta: 'mx.inbox.example',
    });

  it.each(CASES)('an independent verifier (mailauth) passes the signature: %s', async (_name, over) => {
    const composed = await composeMessage(message(over), signing);
    expect(composed.envelopeFrom).toBe('bounce@rp.acme.test');
    const auth = await verify(composed.raw);
    expect(auth.dkim.results).toHaveLength(1);
    expect(auth.dkim.results[0]).toMatchObject({ signingDomain: 'acme.test', selector: 'sel1', status: { result: 'pass' } });
    // RFC 8058: the one-click marker is signed, as are the headers a reader trusts.
    const h = /\bh=([^;]+)/.exec(composed.raw.toString().split('\r\n\r\n')[0].replace(/\r\n /g, ' '))![1];
    expect(h.split(':')).toEqual(expect.arrayContaining(['from', 'to', 'subject', 'message-id', 'date', 'mime-version', 'content-type', 'list-unsubscribe', 'list-unsubscribe-post']));
  });

  it('signs a raw message as it is (the transport-wide DKIM_DOMAIN key for unsigned mail)', async () => {
    const unsigned = await composeMessage(message({}));
    const auth = await verify(signRaw(unsigned.raw, signing.dkim));
    expect(auth.dkim.results[0]).toMatchObject({ signingDomain: 'acme.test', status: { result: 'pass' } });
  });

  it('a changed body or signed header fails verification (the signature covers them)', async () => {
    const raw = (await composeMessage(message({}), signing)).raw.toString();
    const body = await verify(Buffer.from(raw.replace('<p>Hi</p>', '<p>Ho</p>')));
    expect(body.dkim.results[0].status).toMatchObject({ result: 'neutral', comment: 'body hash did not verify' });
    const header = await verify(Buffer.from(raw.replace('Subject: Hello', 'Subject: Hellp')));
    expect(header.dkim.results[0].status).toMatchObject({ result: 'fail', comment: 'bad signature' });
  });

  it('hashes a body once while it repeats, and relaxed-canonicalises any body as RFC 6376 says', () => {
    expect(canonicalBodyRelaxed('')).toBe('');
    expect(canonicalBodyRelaxed('\r\n\r\n')).toBe('');
    expect(canonicalBodyRelaxed(' C \r\nD \t E\r\n\r\n\r\n')).toBe(' C\r\nD E\r\n');
    // RFC 6376 §3.4.5 example, body part: relaxed leaves " C\r\nD E\r\n".
    expect(bodyHash(' C \r\nD \t E\r\n\r\n\r\n')).toBe(bodyHash(' C\r\nD E\r\n'));
  });
});
