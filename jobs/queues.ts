import { type ConnectionOptions, Queue } from 'bullmq';
import type { Logger } from 'pino';
import { JOBS, type JobName, type JobPayload } from './catalog.ts';

export const QUEUE_NAME = 'meterline';

export type Jobs = ReturnType<typeof createJobs>;

/** The one queue and its schedulers; `prefix` isolates tests from each other on a shared Redis. */
export function createJobs(connection: ConnectionOptions, logger: Logger, prefix = 'meterline') {
  const queue = new Queue(QUEUE_NAME, { connection, prefix });
  // Without a listener an 'error' event (Redis away) would crash the process; BullMQ reconnects itself.
  queue.on('error', (err) => logger.error({ err }, 'job queue error'));
  return {
    queue,
    add<N extends JobName>(name: N, payload: JobPayload<N>, jobId?: string) {
      return queue.add(name, JOBS[name].payload.parse(payload), {
        ...JOBS[name].options,
        ...(jobId ? { jobId } : {}),
      });
    },
    /** Idempotent: a restarted worker updates the schedule instead of adding a second one. */
    async scheduleReconcile(everyMinutes: number) {
      await queue.upsertJobScheduler(
        'stripe.reconcile:all',
        { every: everyMinutes * 60_000 },
        { name: 'stripe.reconcile', data: {}, opts: JOBS['stripe.reconcile'].options },
      );
    },
    close: () => queue.close(),
  };
}
