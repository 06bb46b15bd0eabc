import { promises as dns } from 'node:dns';
import net from 'node:net';
import dns2 from 'dns2';

const { Packet } = dns2;

export type ZoneRecord = { type: 'TXT'; value: string } | { type: 'MX'; value: string; priority: number } | { type: 'CNAME'; value: string };

export interface TestDnsServer {
  /** "127.0.0.1:<port>", for DNS_SERVERS. */
  address: string;
  /** Publishes a record (names are case-insensitive). */
  add(name: string, record: ZoneRecord): void;
  /** Removes every record of a type at a name. */
  remove(name: string, type: ZoneRecord['type']): void;
  /** Answers SERVFAIL to every query while on. */
  failing: boolean;
  /** A node:dns resolver pointed at this server (for mailauth). */
  resolver: dns.Resolver;
  close(): Promise<void>;
}

// RFC 1035 response codes (dns2's typings lack Packet.RCODE).
const SERVFAIL = 2;
const NXDOMAIN = 3;

const TYPES = { TXT: Packet.TYPE.TXT, MX: Packet.TYPE.MX, CNAME: Packet.TYPE.CNAME } as const;

/** TXT values longer than 255 bytes go out as several character-strings, as real zones serve DKIM keys. */
const chunks = (value: string) => value.match(/.{1,255}/g) ?? [''];

/**
 * A real authoritative DNS server (dns2) on 127.0.0.1 over UDP and TCP, serving a zone the test
 * edits: unknown names answer NXDOMAIN, known names without the asked type answer no data.
 */
export async function startDnsServer(): Promise<TestDnsServer> {
  const zone = new Map<string, ZoneRecord[]>();
  const key = (name: string) => name.toLowerCase().replace(/\.$/, '');
  const state = { failing: false };
  const server = dns2.createServer({
    udp: true,
    tcp: true,
    handle(request, send) {
      const response = Packet.createResponseFromRequest(request);
      const [question] = request.questions;
      const records = zone.get(key(question.name));
      if (state.failing) response.header.rcode = SERVFAIL;
      else if (!records?.length) response.header.rcode = NXDOMAIN;
      else {
        for (const r of records.filter((r) => TYPES[r.type] === question.type)) {
          const base = { name: question.name, type: TYPES[r.type], class: Packet.CLASS.IN, ttl: 60 };
          if (r.type === 'TXT') response.answers.push({ ...base, data: chunks(r.value) } as never);
          else if (r.type === 'MX') response.answers.push({ ...base, exchange: r.value, priority: r.priority } as never);
          else response.answers.push({ ...base, domain: r.value } as never);
        }
      }
      send(response);
    },
  });
  // One port for UDP and TCP: resolvers retry truncated answers over TCP on the same port.
  let port = 0;
  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    try {
      await server.listen({ udp: { port, address: '127.0.0.1' }, tcp: { port, address: '127.0.0.1' } });
      break;
    } catch (err) {
      if (attempt >= 5) throw err;
    }
  }
  const address = `127.0.0.1:${port}`;
  const resolver = new dns.Resolver({ timeout: 1000, tries: 1 });
  resolver.setServers([address]);
  return {
    address,
    add(name, record) {
      zone.set(key(name), [...(zone.get(key(name)) ?? []), record]);
    },
    remove(name, type) {
      zone.set(key(name), (zone.get(key(name)) ?? []).filter((r) => r.type !== type));
    },
    get failing() {
      return state.failing;
    },
    set failing(on: boolean) {
      state.failing = on;
    },
    resolver,
    close: () => server.close(),
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}
