import type { JobsOptions } from 'bullmq';
import { z } from 'zod';

/** Every job Meterline runs: its payload schema and default options, in one place. */
export const JOBS = {
  /** Re-reads each connected Stripe account and makes the mirror equal to it (heals missed webhooks). */
  'stripe.reconcile': {
    payload: z.object({ namespace: z.string().min(1).optional() }),
    options: {
      attempts: 5,
      backoff: { type: 'exponential', delay: 5_000 },
      removeOnComplete: 1_000,
      removeOnFail: 5_000,
    } satisfies JobsOptions,
  },
} as const;

export type JobName = keyof typeof JOBS;
export type JobPayload<N extends JobName> = z.infer<(typeof JOBS)[N]['payload']>;
