// mailauth ships no type declarations; the part the tests use.
declare module 'mailauth' {
  interface AuthResult {
    dkim: { results: Array<{ signingDomain: string; selector: string; status: { result: string; comment?: string; aligned?: string | false } }> };
    spf: { status: { result: string } };
    dmarc: { status: { result: string } };
  }
  export function authenticate(
    input: Buffer | string,
    options: { resolver: (name: string, rr: string) => Promise<unknown>; ip: string; helo: string; sender: string; mta?: string },
  ): Promise<AuthResult>;
}
