import { describe, expect, it } from 'vitest';
import { newId } from '../../src/ids.ts';
import {
  clickUrl,
  deriveTrackingSecret,
  openPixelUrl,
  signJson,
  unsubscribeUrl,
  verifyToken,
  type TrackingSettings,
} from '../../src/tracking/links.ts';
import { createLinkRewriter } from '../../src/tracking/rewrite.ts';

const s: TrackingSettings = { baseUrl: 'https://mail.acme.example', secret: 'a-tracking-secret-of-at-least-32-characters' };
const tokenOf = (url: string) => url.slice(url.lastIndexOf('/') + 1);

/** Every single-character change of the token at position i (a different base64url char). */
function flip(token: string, i: number): string {
  const c = token[i];
  const r = c === 'A' ? 'B' : c === '.' ? '-' : 'A';
  return token.slice(0, i) + r + token.slice(i + 1);
}

describe('tracking tokens', () => {
  it('round-trip each kind, compactly', () => {
    const m = newId();
    const open = openPixelUrl(s, m);
    expect(open).toMatch(/^https:\/\/mail\.acme\.example\/t\/o\/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}$/);
    expect(tokenOf(open).length).toBeLessThan(80);
    expect(verifyToken(s.secret, tokenOf(open))).toEqual({ type: 'o', messageId: m });

    const target = 'https://shop.example/path?a=1&b=%20x#frag';
    const click = clickUrl(s, m, target);
    expect(click.startsWith('https://mail.acme.example/t/c/')).toBe(true);
    expect(verifyToken(s.secret, tokenOf(click))).toEqual({ type: 'c', messageId: m, url: target });

    const u = { tenantId: newId(), listId: newId(), subscriberId: newId() };
    const unsub = unsubscribeUrl(s, { ...u, messageId: m });
    expect(unsub).toMatch(/^https:\/\/mail\.acme\.example\/u\/[A-Za-z0-9_.-]+$/);
    expect(tokenOf(unsub).length).toBeLessThan(200);
    expect(verifyToken(s.secret, tokenOf(unsub))).toEqual({ type: 'u', ...u, messageId: m });
    expect(verifyToken(s.secret, tokenOf(unsubscribeUrl(s, u)))).toEqual({ type: 'u', ...u });
  });

  it('refuses any single changed character, in the payload and in the signature', () => {
    const m = newId();
    for (const url of [openPixelUrl(s, m), clickUrl(s, m, 'https://x.example/'), unsubscribeUrl(s, { tenantId: newId(), listId: newId(), subscriberId: newId() })]) {
      const token = tokenOf(url);
      expect(verifyToken(s.secret, token)).toBeDefined();
      for (let i = 0; i < token.length; i++) expect(verifyToken(s.secret, flip(token, i)), `position ${i}`).toBeUndefined();
      expect(verifyToken(s.secret, token.slice(0, -1))).toBeUndefined();
      expect(verifyToken(s.secret, token + 'A')).toBeUndefined();
      expect(verifyToken('another-secret-also-32-characters-long!!', token)).toBeUndefined();
    }
    for (const junk of ['', '.', 'abc', 'a.b', 'x'.repeat(10_000), '%00.AAAAAAAAAAAAAAAAAAAAAA']) expect(verifyToken(s.secret, junk)).toBeUndefined();
  });

  it('signs only absolute http(s) click targets, and refuses signed ones that are not', () => {
    for (const bad of ['javascript:alert(1)', 'mailto:a@b.example', '/relative', '//evil.example/x', 'data:text/html,x', 'http://']) {
      expect(() => clickUrl(s, newId(), bad)).toThrow();
    }
    // Even a correctly signed payload naming a non-http target is refused.
    const m = Buffer.from(newId().replace(/-/g, ''), 'hex').toString('base64url');
    expect(verifyToken(s.secret, signJson(s.secret, JSON.stringify({ t: 'c', m, u: 'javascript:alert(1)' })))).toBeUndefined();
    expect(verifyToken(s.secret, signJson(s.secret, JSON.stringify({ t: 'x', m })))).toBeUndefined();
  });

  it('derives a stable secret of at least 32 characters', () => {
    expect(deriveTrackingSecret('jwt-secret')).toBe(deriveTrackingSecret('jwt-secret'));
    expect(deriveTrackingSecret('jwt-secret')).not.toBe(deriveTrackingSecret('jwt-secret2'));
    expect(deriveTrackingSecret('jwt-secret').length).toBeGreaterThanOrEqual(32);
  });
});

describe('link rewriter', () => {
  const m = newId();
  const clickTargets = (html: string) =>
    [...html.matchAll(/href="https:\/\/mail\.acme\.example\/t\/c\/([^"]+)"/gi)].map((x) => verifyToken(s.secret, x[1]));

  it('rewrites http(s) hrefs in any quoting, signing the decoded URL for this message', () => {
    const rw = createLinkRewriter(s, { click: true, open: false });
    const out = rw.apply(
      `<a href="https://a.example/x?p=1&amp;q=2" class="btn">A</a> <A HREF='http://b.example/'>B</A> <a title="t" href=https://c.example/c>C</a>`,
      m,
    );
    expect(clickTargets(out)).toEqual([
      { type: 'c', messageId: m, url: 'https://a.example/x?p=1&q=2' },
      { type: 'c', messageId: m, url: 'http://b.example/' },
      { type: 'c', messageId: m, url: 'https://c.example/c' },
    ]);
    expect(out).toContain('class="btn">A</a>');
    expect(out).toContain('<a title="t" href="https://mail.acme.example/t/c/');
    expect(out).not.toContain('<img');
  });

  it('leaves mailto, tel, anchors, relative links, our own links, Liquid leftovers and data-notrack alone', () => {
    const unsub = unsubscribeUrl(s, { tenantId: newId(), listId: newId(), subscriberId: newId() });
    const html = [
      '<a href="mailto:a@b.example">m</a>',
      '<a href="tel:+123">t</a>',
      '<a href="#top">#</a>',
      '<a href="/relative">r</a>',
      `<a href="${unsub}">unsubscribe</a>`,
      '<a href="https://x.example/?e={{ email }}">liquid</a>',
      '<a data-notrack href="https://x.example/a">n1</a>',
      '<a href="https://x.example/b" data-notrack>n2</a>',
      '<abbr href="https://x.example/c">abbr</abbr>',
      '<link href="https://x.example/style.css">',
    ].join('\n');
    expect(createLinkRewriter(s, { click: true, open: false }).apply(html, m)).toBe(html);
  });

  it('adds the open pixel before </body>, or at the end without one; nothing when both are off', () => {
    const rw = createLinkRewriter(s, { click: false, open: true });
    const withBody = rw.apply('<html><body><a href="https://x.example/">x</a></BODY></html>', m);
    expect(withBody).toMatch(/<a href="https:\/\/x\.example\/">x<\/a><img src="https:\/\/mail\.acme\.example\/t\/o\/[^"]+" width="1" height="1" alt=""[^>]*><\/BODY><\/html>$/);
    const src = withBody.match(/<img src="[^"]*\/t\/o\/([^"]+)"/)![1];
    expect(verifyToken(s.secret, src)).toEqual({ type: 'o', messageId: m });
    expect(rw.apply('<p>fragment</p>', m)).toMatch(/^<p>fragment<\/p><img src="https:\/\/mail\.acme\.example\/t\/o\//);
    const none = createLinkRewriter(s, { click: false, open: false });
    expect(none.apply('<body><a href="https://x.example/">x</a></body>', m)).toBe('<body><a href="https://x.example/">x</a></body>');
  });

  it('is fast enough for the hot path: a 20 KB newsletter with 30 links', () => {
    let html = '<html><body><table>';
    for (let i = 0; i < 30; i++) html += `<tr><td><p>Paragraph ${i} lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.</p><a href="https://www.example.com/articles/${i}?utm_source=news&amp;utm_medium=email">Read ${i}</a></td></tr>\n`;
    while (html.length < 20_000) html += '<p>Filler text for the newsletter body to reach twenty kilobytes.</p>\n';
    html += '</table></body></html>';
    const rw = createLinkRewriter(s, { click: true, open: true });
    const ids = Array.from({ length: 100 }, () => newId());
    for (let i = 0; i < 200; i++) rw.apply(html, ids[i % 100]);
    const n = 2000;
    const t0 = performance.now();
    let out = '';
    for (let i = 0; i < n; i++) out = rw.apply(html, ids[i % 100]);
    const us = ((performance.now() - t0) * 1000) / n;
    console.log(`link rewriter: ${us.toFixed(1)} µs/message (20 KB, 30 links, pixel)`);
    expect(clickTargets(out)).toHaveLength(30);
    expect(us).toBeLessThan(2000); // generous: shared, noisy machines
  });
});
