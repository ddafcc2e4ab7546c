import { PartitionLog } from './partition-log.ts';

export type Topic = { name: string; partitions: PartitionLog[] };

const LEGAL_NAME = /^[a-zA-Z0-9._-]{1,249}$/;

export function isLegalTopicName(name: string): boolean {
  return LEGAL_NAME.test(name) && name !== '.' && name !== '..';
}

/** All topics of the broker, and a wake-up for fetches that wait for data. */
export class TopicStore {
  private readonly topics = new Map<string, Topic>();
  private waiters = new Set<() => void>();

  names(): string[] {
    return [...this.topics.keys()].sort();
  }

  get(name: string): Topic | undefined {
    return this.topics.get(name);
  }

  partition(topic: string, partition: number): PartitionLog | undefined {
    return this.topics.get(topic)?.partitions[partition];
  }

  create(name: string, partitions: number): Topic {
    const topic = { name, partitions: Array.from({ length: partitions }, () => new PartitionLog()) };
    this.topics.set(name, topic);
    return topic;
  }

  /** Called after every append: wakes every waiting fetch, which re-reads and decides. */
  notifyAppend(): void {
    const waiting = this.waiters;
    this.waiters = new Set();
    for (const wake of waiting) wake();
  }

  /** Resolves on the next append, after `timeoutMs`, or when `signal` aborts, whichever is first. */
  waitForAppend(timeoutMs: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) {
        resolve();
        return;
      }
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, timeoutMs));
      signal.addEventListener('abort', done);
      this.waiters.add(done);
    });
  }
}
