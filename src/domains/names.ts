import { domainToASCII } from 'node:url';
import { invalid } from '../errors.ts';

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/**
 * A domain name as we store it: IDNA to ASCII (punycode), lower case, no trailing dot; at least
 * two labels of letters, digits and inner hyphens, 253 characters at most, not an IP address.
 * Throws a 422 `invalid_domain` naming the problem.
 */
export function normalizeDomainName(input: string): string {
  const trimmed = input.trim().replace(/\.$/, '');
  const ascii = trimmed.length > 0 && trimmed.length <= 253 ? domainToASCII(trimmed) : '';
  const fail = (why: string) => invalid(`"${input.slice(0, 80)}" is not a domain name you can send from: ${why}`, 'invalid_domain');
  if (!ascii) throw fail('expected a host name such as news.example.com');
  if (ascii.length > 253) throw fail('longer than 253 characters');
  const labels = ascii.split('.');
  if (labels.length < 2) throw fail('it needs at least two labels (news.example.com)');
  if (!labels.every((l) => LABEL.test(l))) throw fail('labels are 1-63 letters, digits or inner hyphens');
  if (/^\d+$/.test(labels[labels.length - 1])) throw fail('an IP address is not a domain');
  return ascii;
}

/** The domain of an address ("a@News.Example" -> "news.example"), IDNA-normalized; null when unusable. */
export function addressDomain(address: string): string | null {
  const at = address.lastIndexOf('@');
  if (at < 1) return null;
  try {
    return normalizeDomainName(address.slice(at + 1));
  } catch {
    return null;
  }
}

/** The domain and each parent with at least two labels: a.b.example.com, b.example.com, example.com. */
export function domainAndParents(domain: string): string[] {
  const labels = domain.split('.');
  return labels.slice(0, -1).map((_, i) => labels.slice(i).join('.'));
}
