import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';

/**
 * The engine's one outbound HTTP client (webhook deliveries): POST only, a hard timeout, no
 * redirects followed (a 3xx is just a non-2xx answer), the response body read up to a cap, and
 * an SSRF guard. The guard checks the address actually connected to: literal IPs before the
 * request, host names in the socket's `lookup` at connection time, so a name that resolves to a
 * public address when checked and to a private one when used (DNS rebinding) is still refused.
 */

/** Addresses no webhook may reach unless allowPrivate: loopback, private, CGNAT, link-local (cloud metadata), unspecified, multicast, reserved. */
const BLOCKED = new net.BlockList();
for (const [prefix, bits] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) BLOCKED.addSubnet(prefix, bits, 'ipv4');
for (const [prefix, bits] of [
  ['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8], ['64:ff9b::', 96], ['2001:db8::', 32],
] as const) BLOCKED.addSubnet(prefix, bits, 'ipv6');

/** True when the address is one a webhook must not reach (IPv4-mapped IPv6 is judged as IPv4). */
export function isBlockedAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return BLOCKED.check(mapped[1], 'ipv4');
  const family = net.isIP(address);
  if (family === 0) return true;
  return BLOCKED.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

export class BlockedAddressError extends Error {
  readonly code = 'ERR_WEBHOOK_BLOCKED_ADDRESS';
}

export type Resolver = (hostname: string) => Promise<Array<{ address: string; family: number }>>;

const systemResolver: Resolver = (hostname) => dns.promises.lookup(hostname, { all: true, verbatim: true });

export interface ClientOptions {
  /** WEBHOOK_ALLOW_PRIVATE: private addresses and plain http allowed (tests, internal receivers). */
  allowPrivate: boolean;
  timeoutMs: number;
  /** Sockets kept per host:port. */
  maxSocketsPerHost: number;
  /** Bytes of the response body kept as the excerpt. */
  excerptBytes?: number;
  /** Name resolution (tests inject one to simulate rebinding); the system resolver otherwise. */
  resolve?: Resolver;
}

export interface HttpResult {
  status: number;
  /** Retry-After in milliseconds, when the answer carries a usable one. */
  retryAfterMs?: number;
  excerpt: string;
  latencyMs: number;
}

/** Why a URL may not be used as an endpoint (checked at registration and again before each request). */
export function urlProblem(raw: string, allowPrivate: boolean): string | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'url must be an absolute URL';
  }
  if (url.protocol !== 'https:' && !(allowPrivate && url.protocol === 'http:')) return 'url must use https';
  if (url.username || url.password) return 'url must not carry credentials';
  if (url.hash) return 'url must not have a fragment';
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (!allowPrivate && net.isIP(host) && isBlockedAddress(host)) return 'url points at a private, loopback, link-local or reserved address';
  return undefined;
}

/** Retry-After as seconds or an HTTP date, in ms from now (clamped to 1 s .. 1 day). */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const seconds = /^\s*\d+\s*$/.test(value) ? Number(value) * 1000 : Date.parse(value) - now;
  if (!Number.isFinite(seconds)) return undefined;
  return Math.min(86_400_000, Math.max(1000, seconds));
}

export class WebhookHttpClient {
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;
  private readonly resolve: Resolver;

  constructor(private readonly options: ClientOptions) {
    this.resolve = options.resolve ?? systemResolver;
    const lookup = this.guardedLookup.bind(this);
    const agentOptions = { keepAlive: true, maxSockets: options.maxSocketsPerHost, lookup } as http.AgentOptions;
    this.httpAgent = new http.Agent(agentOptions);
    this.httpsAgent = new https.Agent(agentOptions);
  }

  /** net's `lookup` hook: every resolved address must be allowed, else the connection fails. */
  private guardedLookup(hostname: string, opts: dns.LookupOptions, callback: (...args: any[]) => void) {
    this.resolve(hostname).then(
      (addresses) => {
        const wanted = opts.family === 4 || opts.family === 6 ? addresses.filter((a) => a.family === opts.family) : addresses;
        if (!wanted.length) return callback(Object.assign(new Error(`${hostname} did not resolve`), { code: 'ENOTFOUND' }));
        if (!this.options.allowPrivate && wanted.some((a) => isBlockedAddress(a.address))) {
          return callback(new BlockedAddressError(`${hostname} resolves to a private, loopback, link-local or reserved address`));
        }
        if (opts.all) callback(null, wanted);
        else callback(null, wanted[0].address, wanted[0].family);
      },
      (err) => callback(err),
    );
  }

  /** POSTs body; resolves with any HTTP answer, rejects on a refused URL, connection error or timeout. */
  post(rawUrl: string, headers: Record<string, string>, body: string): Promise<HttpResult> {
    const problem = urlProblem(rawUrl, this.options.allowPrivate);
    if (problem) return Promise.reject(new BlockedAddressError(problem));
    const url = new URL(rawUrl);
    const started = performance.now();
    const cap = this.options.excerptBytes ?? 4096;
    return new Promise<HttpResult>((resolve, reject) => {
      const request = (url.protocol === 'https:' ? https : http).request(
        url,
        {
          method: 'POST',
          agent: url.protocol === 'https:' ? this.httpsAgent : this.httpAgent,
          headers: { ...headers, 'content-length': Buffer.byteLength(body) },
        },
        (response) => {
          const chunks: Buffer[] = [];
          let kept = 0;
          let total = 0;
          response.on('data', (chunk: Buffer) => {
            total += chunk.length;
            if (kept < cap) {
              chunks.push(chunk.subarray(0, cap - kept));
              kept += Math.min(chunk.length, cap - kept);
            }
            // A receiver streaming a large body is cut off rather than read to its end.
            if (total > 64 * 1024) response.destroy();
          });
          const done = () => {
            clearTimeout(timer);
            const retryAfter = response.headers['retry-after'];
            resolve({
              status: response.statusCode ?? 0,
              retryAfterMs: parseRetryAfter(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter),
              excerpt: Buffer.concat(chunks).toString('utf8'),
              latencyMs: Math.round(performance.now() - started),
            });
          };
          response.on('end', done);
          response.on('close', done);
          response.on('error', done);
        },
      );
      const timer = setTimeout(() => request.destroy(new Error(`timed out after ${this.options.timeoutMs} ms`)), this.options.timeoutMs);
      request.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      request.end(body);
    });
  }

  close() {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}
