/** Query parameters that carry a secret in connection strings (libpq, Redis clients, tokens). */
const SECRET_PARAMS = /^(password|pass|passwd|pwd|sslpassword|secret|token|auth|access_token|api_key|apikey)$/i;
const SCHEME = /^([a-z][a-z0-9+.-]*:\/\/)(.*)$/is;

/**
 * Secret query parameters anywhere after the scheme: a value runs to the next "&" (not to
 * a "#": connection strings have no fragments, and a password may hold one).
 */
function querySecrets(body: string): { key: string; value: string; start: number; end: number }[] {
  const out: { key: string; value: string; start: number; end: number }[] = [];
  for (const m of body.matchAll(/[?&]([^=&?#/@]+)=([^&]*)/g)) {
    const key = safeDecode(m[1]!);
    if (!SECRET_PARAMS.test(key) || m[2] === '') continue;
    const start = m.index + m[0].length - m[2]!.length;
    out.push({ key, value: m[2]!, start, end: start + m[2]!.length });
  }
  return out;
}

function maskQuery(body: string): string {
  let out = body;
  for (const p of querySecrets(body).reverse()) out = `${out.slice(0, p.start)}***${out.slice(p.end)}`;
  return out;
}

/**
 * The userinfo of a connection string, found without a URL parser: a password may hold
 * `#`, `/`, `?` or `@` unencoded, which a WHATWG parse turns into a fragment or a path (and
 * then "finds" no password at all). It runs to the last `@` once query secrets are masked;
 * erring that way masks too much, never too little.
 */
function userinfoOf(body: string): { userinfo: string | undefined; rest: string } {
  const at = body.lastIndexOf('@');
  return at === -1 ? { userinfo: undefined, rest: body } : { userinfo: body.slice(0, at), rest: body.slice(at + 1) };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** A connection string safe for logs and records: every password replaced by `***`. */
export function maskUrl(value: string): string {
  const m = SCHEME.exec(value);
  if (!m) return value;
  const { userinfo, rest } = userinfoOf(maskQuery(m[2]!));
  if (userinfo === undefined) return `${m[1]}${rest}`;
  const colon = userinfo.indexOf(':');
  return `${m[1]}${colon === -1 ? userinfo : `${userinfo.slice(0, colon)}:***`}@${rest}`;
}

/** Every form of inline secret in a connection string, named for an error message. */
export function inlineSecrets(value: string): string[] {
  const m = SCHEME.exec(value);
  if (!m) return [];
  const found = querySecrets(m[2]!).map((p) => `the "${p.key}" query parameter`);
  const { userinfo } = userinfoOf(maskQuery(m[2]!));
  if (userinfo?.includes(':') && userinfo.slice(userinfo.indexOf(':') + 1) !== '') found.unshift('the password before the "@"');
  return found;
}

/** The secret values themselves (raw and decoded), to scrub from any text as a last line of defence. */
export function secretsOf(value: string): string[] {
  const m = SCHEME.exec(value);
  if (!m) return [];
  const raw = querySecrets(m[2]!).map((p) => p.value);
  const { userinfo } = userinfoOf(maskQuery(m[2]!));
  if (userinfo?.includes(':')) raw.push(userinfo.slice(userinfo.indexOf(':') + 1));
  return [...new Set(raw.flatMap((s) => [s, safeDecode(s)]))].filter((s) => s.length >= 4);
}

/** Replace every occurrence of each secret in `text` (longest first, so no part of one survives). */
export function scrub(text: string, secrets: string[]): string {
  let out = text;
  for (const s of [...secrets].sort((a, b) => b.length - a.length)) out = out.split(s).join('***');
  return out;
}
