import type { SignableRequest } from './remote-write.js';

/**
 * SigV4 for Amazon Managed Service for Prometheus (service `aps`), with the default
 * credential chain (the Lambda's or task's role). Loaded only when configured.
 */
export async function sigv4Signer(region: string, credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }) {
  const [{ SignatureV4 }, { Sha256 }, { HttpRequest }] = await Promise.all([
    import('@smithy/signature-v4'),
    import('@aws-crypto/sha256-js'),
    import('@smithy/protocol-http'),
  ]);
  const creds = credentials ?? (await import('@aws-sdk/credential-provider-node')).defaultProvider();
  const signer = new SignatureV4({ service: 'aps', region, credentials: creds, sha256: Sha256 });
  return async ({ url, headers, body }: SignableRequest): Promise<Record<string, string>> => {
    const request = new HttpRequest({
      method: 'POST',
      protocol: url.protocol,
      hostname: url.hostname,
      ...(url.port ? { port: Number(url.port) } : {}),
      path: url.pathname,
      headers: { ...headers, host: url.host },
      body,
    });
    const signed = await signer.sign(request);
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(signed.headers)) if (k.toLowerCase() !== 'host') out[k] = String(v);
    return out;
  };
}
