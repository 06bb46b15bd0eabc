import { clickBodyPrefix, clickBodySuffix, normalizeLink, openPixelUrl, signBody, type TrackingSettings } from './links.ts';

export interface LinkRewriter {
  apply(html: string, messageId: string): string;
}

/**
 * The href of an <a> tag, in any quoting. Groups: 1 = everything before the value, 2/3/4 = the
 * value in double, single or no quotes, 5 = the rest of the opening tag. Never crosses a '>'.
 */
const A_HREF = /(<a\b[^>]*?\shref\s*=\s*)(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))([^>]*)/gi;
const BODY_END = /<\/body\s*>/gi;
const ENTITY = /&(?:amp|quot|apos|#0*38|#0*39|#x0*26|#x0*27);/gi;
const ENTITY_VALUES: Record<string, string> = { amp: '&', quot: '"', apos: "'", '38': '&', '39': "'", '26': '&', '27': "'" };

// Browsers follow the attribute's decoded value; sign that, or `&amp;` would reach the target.
function decodeAttr(v: string): string {
  if (!v.includes('&')) return v;
  return v.replace(ENTITY, (e) => ENTITY_VALUES[e.slice(1, -1).toLowerCase().replace(/^#x?0*/, '')] ?? e);
}

/**
 * Built once per job. Rewrites http(s) hrefs of <a> tags to clickUrl(...) and, when open
 * tracking is on, appends a 1x1 <img> pixel before </body> (or at the end). Leaves mailto:,
 * tel:, anchors (#...) and links containing Liquid output alone where unsafe.
 *
 * Not rewritten either: our own /u/ and /t/ URLs (the unsubscribe link must stay one request),
 * hrefs that still contain Liquid delimiters (a template meant for another system: signing a
 * placeholder would redirect every recipient to it), and <a> tags marked `data-notrack`.
 */
export function createLinkRewriter(s: TrackingSettings, options: { click: boolean; open: boolean }): LinkRewriter {
  const ownPrefix = `${s.baseUrl}/`;
  const clickBase = `${s.baseUrl}/t/c/`;
  // The encoded target is the same for every recipient: decide and encode each href once per job.
  const targets = new Map<string, string | null>();
  const targetBody = (raw: string): string | null => {
    let body = targets.get(raw);
    if (body !== undefined) return body;
    const given = decodeAttr(raw);
    // Signed as a browser would follow it (normalizeLink): `https://acme.example/日本`, `café`,
    // an href broken over two lines all reach the recipient's browser as its own parsing would.
    const url = given.includes('{{') || given.includes('{%') ? undefined : normalizeLink(given);
    const skip = url === undefined || (url.startsWith(ownPrefix) && /^\/(?:u|t)\//.test(url.slice(s.baseUrl.length)));
    body = skip ? null : clickBodySuffix(url);
    if (targets.size < 10_000) targets.set(raw, body);
    return body;
  };

  return {
    apply(html: string, messageId: string): string {
      let out = html;
      if (options.click && out.includes('href')) {
        const prefix = clickBodyPrefix(messageId);
        // The signature is the cost (one HMAC per link): a target repeated in a message is signed once.
        const signed = new Map<string, string>();
        out = out.replace(A_HREF, (match, head: string, dq: string | undefined, sq: string | undefined, bare: string | undefined, rest: string) => {
          if (match.includes('data-notrack')) return match;
          const body = targetBody(dq ?? sq ?? bare ?? '');
          if (body === null) return match;
          let token = signed.get(body);
          if (token === undefined) signed.set(body, (token = signBody(s.secret, prefix + body)));
          return `${head}"${clickBase}${token}"${rest}`;
        });
      }
      if (options.open) {
        const pixel = `<img src="${openPixelUrl(s, messageId)}" width="1" height="1" alt="" style="display:block;width:1px;height:1px;border:0">`;
        // Before the last </body>; documents without one get the pixel at the end.
        let at = -1;
        for (const m of out.matchAll(BODY_END)) at = m.index;
        out = at < 0 ? out + pixel : out.slice(0, at) + pixel + out.slice(at);
      }
      return out;
    },
  };
}
