import type { ConnectionOptions } from 'bullmq';

/**
 * BullMQ connection options for a redis:// or rediss:// URL. Queues and workers get options, not a
 * shared ioredis client, so each opens and closes its own connections: a shared client closed under
 * them rejects their in-flight commands with "Connection is closed" (taskforcesh/bullmq#3546).
 */
export function bullConnection(url: string): ConnectionOptions {
  const u = new URL(url);
  return {
    host: u.hostname,
    port: Number(u.port || 6379),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    db: Number(u.pathname.slice(1) || 0),
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
    // BullMQ needs commands that never give up (maxRetriesPerRequest: null); it sets that itself.
    maxRetriesPerRequest: null,
  };
}
