import type { FastifyInstance } from 'fastify';
import { withTimeout } from '../lib/time.ts';
import type { Metrics } from './metrics.ts';

/** A named dependency check for /readyz: resolves when healthy, throws with the reason otherwise. */
export type ReadinessCheck = { name: string; check: () => Promise<void> };

/** Not ready while the sink is further behind than `bound`: the api would only deepen the backlog. */
export function sinkLagCheck(lag: () => Promise<number>, bound: number): ReadinessCheck {
  return {
    name: 'sinkLag',
    check: async () => {
      const n = await lag();
      if (n > bound) throw new Error(`${n} events waiting (bound ${bound})`);
    },
  };
}

/**
 * Not ready while events wait and no sink batch was stored for `stallMs`: a sink that retries the
 * same batch forever, or none running at all. Before any batch was ever stored, the clock starts
 * when this process first saw events waiting.
 */
export function sinkStallCheck(
  lag: () => Promise<number>,
  lastStored: () => Promise<number | null>,
  stallMs: number,
  now: () => number = Date.now,
): ReadinessCheck {
  let waitingSince: number | null = null;
  return {
    name: 'sinkProgress',
    check: async () => {
      const [waiting, last] = await Promise.all([lag(), lastStored()]);
      if (waiting === 0) {
        waitingSince = null;
        return;
      }
      waitingSince ??= now();
      const since = Math.max(last ?? 0, waitingSince);
      const stalledMs = now() - since;
      if (stalledMs > stallMs) {
        const lastText = last === null ? 'never' : new Date(last).toISOString();
        throw new Error(
          `${waiting} events waiting and no sink batch stored for ${Math.round(stalledMs / 1000)} s (last: ${lastText})`,
        );
      }
    },
  };
}

export function opsRoutes(deps: {
  metrics: Metrics;
  checks: ReadinessCheck[];
  beforeScrape?: () => Promise<void>;
}) {
  return async (app: FastifyInstance) => {
    app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));

    app.get('/readyz', { schema: { hide: true } }, async (_request, reply) => {
      const results = await Promise.all(
        deps.checks.map(async ({ name, check }) => {
          try {
            await withTimeout(check(), 2_000);
            return [name, 'ok'] as const;
          } catch (err) {
            return [name, err instanceof Error ? err.message : String(err)] as const;
          }
        }),
      );
      const ready = results.every(([, status]) => status === 'ok');
      return reply
        .code(ready ? 200 : 503)
        .send({ status: ready ? 'ready' : 'not ready', checks: Object.fromEntries(results) });
    });

    app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
      await deps.beforeScrape?.().catch(() => undefined);
      return reply.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
    });
  };
}
