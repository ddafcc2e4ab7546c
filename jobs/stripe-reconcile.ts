import { type Job, UnrecoverableError } from 'bullmq';
import { isKeyRefused } from '../src/stripe/client.ts';
import type { StripeService } from '../src/stripe/service.ts';
import { JOBS } from './catalog.ts';

/**
 * Reconciles one namespace, or every connected one. A failing namespace is recorded on its
 * connection and does not hold up the others; a job for one namespace fails so that BullMQ retries
 * it, except for a refused key, which retrying cannot fix.
 */
export function stripeReconcileProcessor(stripe: StripeService) {
  return async (job: Job) => {
    const { namespace } = JOBS['stripe.reconcile'].payload.parse(job.data);
    const namespaces = namespace
      ? [namespace]
      : (await stripe.store.listConnections()).map((c) => c.namespace);
    const problems: Record<string, string[]> = {};
    for (const ns of namespaces) {
      try {
        problems[ns] = await stripe.sync(ns);
      } catch (err) {
        problems[ns] = await stripe.recordSyncFailure(ns, err);
        if (namespace) throw isKeyRefused(err) ? new UnrecoverableError((err as Error).message) : err;
      }
    }
    return problems;
  };
}
