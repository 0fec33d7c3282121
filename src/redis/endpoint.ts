export interface RedisEndpoint {
  host: string;
  port: number;
  tls: boolean;
  username?: string | undefined;
  password?: string | undefined;
  db: number;
}

/** `redis[s]://[user][:password]@host:port[/db]`. */
export function parseRedisUrl(url: string): RedisEndpoint {
  const u = new URL(url);
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new Error(`not a redis:// URL: ${u.protocol}`);
  return {
    host: u.hostname || '127.0.0.1',
    port: Number(u.port || 6379),
    tls: u.protocol === 'rediss:',
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db: Number(u.pathname.replace('/', '') || 0),
  };
}
