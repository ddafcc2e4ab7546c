import { type Job, UnrecoverableError } from 'bullmq';
import Stripe from 'stripe';
import type { StripeService } from '../src/stripe/service.ts';
import { JOBS } from './catalog.ts';

/** Reconciles one namespace, or every connected one. A revoked key is not retried. */
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
        if (
          err instanceof Stripe.errors.StripeAuthenticationError ||
          err instanceof Stripe.errors.StripePermissionError
        ) {
          await stripe.store.recordSync(ns, [`Stripe refused the stored key: ${err.message}`]);
          if (namespace) throw new UnrecoverableError(err.message);
          continue;
        }
        throw err;
      }
    }
    return problems;
  };
}
