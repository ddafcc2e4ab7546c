import { type ConnectionOptions, type Job, Worker } from 'bullmq';
import type { Logger } from 'pino';
import type { JobName } from './catalog.ts';
import { QUEUE_NAME } from './queues.ts';

export type Processors = { [N in JobName]: (job: Job) => Promise<unknown> };

/** One worker for the queue; each job goes to the processor named by the catalog. */
export function startWorker(
  connection: ConnectionOptions,
  processors: Processors,
  logger: Logger,
  prefix = 'meterline',
) {
  const worker = new Worker(
    QUEUE_NAME,
    async (job) => {
      const processor = processors[job.name as JobName];
      if (!processor) throw new Error(`no processor for job ${job.name}`);
      return processor(job);
    },
    { connection, prefix, concurrency: 1 },
  );
  worker.on('failed', (job, err) => logger.warn({ job: job?.name, id: job?.id, err }, 'job failed'));
  worker.on('error', (err) => logger.error({ err }, 'worker error'));
  return worker;
}
