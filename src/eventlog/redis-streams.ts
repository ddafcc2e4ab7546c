import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { AppError } from '../lib/errors.ts';
import { sleep } from '../lib/time.ts';
import {
  type BatchContext,
  type EventLog,
  LeaseLostError,
  type LogMessage,
  type LogRecord,
  type SubscribeOptions,
  type Subscription,
} from './event-log.ts';

export type RedisStreamsOptions = {
  stream: string;
  /** Publishing fails with 503 past this many entries rather than trimming unacknowledged ones. */
  maxLength: number;
  /** Pending entries idle this long belonged to a dead consumer and are claimed. */
  claimIdleMs: number;
};

type StreamEntry = [id: string, fields: string[] | null];

/** Stream ids are "ms-seq"; compared as numbers, never as strings. */
function parseId(id: string): [bigint, bigint] {
  const [ms, seq] = id.split('-');
  return [BigInt(ms ?? '0'), BigInt(seq ?? '0')];
}
function compareIds(a: string, b: string): number {
  const [am, as] = parseId(a);
  const [bm, bs] = parseId(b);
  return am === bm ? Number(as - bs) : am < bm ? -1 : 1;
}
function nextId(id: string): string {
  const [ms, seq] = parseId(id);
  return `${ms}-${seq + 1n}`;
}

/** Entries deleted from the stream come back without fields; they are acknowledged and skipped. */
function toRecords(entries: StreamEntry[]): LogRecord[] {
  const records: LogRecord[] = [];
  for (const [id, fields] of entries) {
    if (!fields) continue;
    const map = new Map<string, string>();
    for (let i = 0; i + 1 < fields.length; i += 2) map.set(fields[i] as string, fields[i + 1] as string);
    records.push({ position: id, key: map.get('k') ?? '', value: map.get('v') ?? '' });
  }
  return records;
}

// Redis Streams cannot send every copy of an event to one consumer (Kafka does, by message key), and two
// consumers storing conflicting copies of one event at the same moment would both miss the stored-key
// lookup. So one consumer of a group is active at a time: it holds this lease, renewed before each
// read and for as long as its handler runs (each ClickHouse call has its own timeout), and the
// others stand by until it lapses: claimIdleMs without renewal means the process died or lost Redis,
// the same test XAUTOCLAIM applies to its entries. The holder is one subscription, not a name: two
// processes left on the same default name still exclude each other, and a restarted sink waits out
// its predecessor's lease (claimIdleMs) unless that one stopped cleanly and released it.
const HOLD_LEASE = `local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0`;
const RELEASE_LEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

// One script appends a request's messages: atomic like MULTI/EXEC (all or none, no other client in
// between), the length bound checked in the same step, and one command instead of one per message
// (a quarter of the client CPU and 40 % of the time of MULTI with 1,000 XADDs, measured).
// ARGV: the bound, then key, value, key, value, ... Returns the count appended, or -1 when full.
const APPEND = `if redis.call('XLEN', KEYS[1]) + (#ARGV - 1) / 2 > tonumber(ARGV[1]) then return -1 end
for i = 2, #ARGV, 2 do redis.call('XADD', KEYS[1], '*', 'k', ARGV[i], 'v', ARGV[i + 1]) end
return (#ARGV - 1) / 2`;

/** XINFO replies are flat [name, value, ...] lists. */
function pairs(flat: unknown[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = flat[i + 1];
  return out;
}

export function createRedisStreamsLog(redis: Redis, options: RedisStreamsOptions, logger: Logger): EventLog {
  const { stream } = options;
  // ioredis reconnects by itself; without a listener it would print each failed attempt to stderr.
  const onConnectionError = (err: Error) => logger.warn({ err }, 'redis connection error; reconnecting');
  redis.on('error', onConnectionError);

  async function groups(): Promise<Record<string, unknown>[]> {
    try {
      const reply = (await redis.xinfo('GROUPS', stream)) as unknown[][];
      return reply.map(pairs);
    } catch (err) {
      if (String(err).includes('no such key')) return [];
      throw err;
    }
  }

  /** Removes only entries every group has acknowledged: below each group's oldest pending entry. */
  async function trimAcknowledged(): Promise<void> {
    const all = await groups();
    if (all.length === 0) return;
    let safe: string | undefined;
    for (const group of all) {
      let groupSafe = nextId(String(group['last-delivered-id']));
      if (Number(group.pending) > 0) {
        const [, smallest] = (await redis.xpending(stream, String(group.name))) as [number, string | null];
        if (smallest) groupSafe = smallest;
      }
      if (safe === undefined || compareIds(groupSafe, safe) < 0) safe = groupSafe;
    }
    if (safe) await redis.xtrim(stream, 'MINID', safe);
  }

  async function ensureGroup(group: string): Promise<void> {
    try {
      // From the start of the stream: a new sink group must store every event still in the log.
      await redis.xgroup('CREATE', stream, group, '0', 'MKSTREAM');
    } catch (err) {
      if (!String(err).includes('BUSYGROUP')) throw err;
    }
  }

  return {
    kind: 'redis',

    async setup() {},

    async verify() {},

    async publish(messages: readonly LogMessage[]) {
      if (messages.length === 0) return;
      const args: (string | number)[] = [options.maxLength];
      for (const message of messages) args.push(message.key, message.value);
      const append = async () => (await redis.eval(APPEND, 1, stream, ...args)) as number;
      if ((await append()) >= 0) return;
      // Full: entries every group acknowledged may go; unacknowledged ones never do.
      await trimAcknowledged();
      if ((await append()) >= 0) return;
      throw new AppError('ML_ERR_EVENTLOG_FULL', 'the event log is full; the sink is behind, retry later');
    },

    async subscribe(opts: SubscribeOptions, handle): Promise<Subscription> {
      await ensureGroup(opts.group);
      const reader = redis.duplicate(); // blocking reads need their own connection
      reader.on('error', onConnectionError);
      let stopping = false;
      let active = false;
      let lastClaimAt = 0;
      let lastTrimAt = 0;
      const lease = `${stream}:${opts.group}:active`;
      const holder = `${opts.consumer}:${randomUUID()}`;
      const holdLease = async () =>
        (await redis.eval(HOLD_LEASE, 1, lease, holder, options.claimIdleMs)) === 1;
      /**
       * Runs the handler with the lease renewed meanwhile. Each write the handler makes first checks
       * that the lease is still ours (writeGuard), since a process frozen for longer than
       * claimIdleMs (a GC pause, a stopped VM) finds on waking that a standby took over; a write in
       * flight is aborted once the lease can no longer be vouched for.
       */
      const handleHoldingLease = async (records: LogRecord[]) => {
        const writes = new AbortController();
        let validUntil = Date.now() + options.claimIdleMs;
        const renewNow = async (): Promise<boolean> => {
          const sentAt = Date.now();
          const held = await holdLease();
          // A reply that took a third of the lease to arrive cannot vouch for what is left of it.
          if (!held || Date.now() - sentAt > options.claimIdleMs / 3) return false;
          validUntil = sentAt + options.claimIdleMs;
          return true;
        };
        const lose = (reason: string) => {
          if (!writes.signal.aborted) {
            logger.error({ consumer: opts.consumer }, reason);
            writes.abort(new LeaseLostError(reason));
          }
        };
        const renew = setInterval(() => {
          if (Date.now() > validUntil - options.claimIdleMs / 3)
            lose('the sink lease ran out while storing a batch');
          renewNow().then(
            (held) => {
              if (!held) lose('lost the sink lease while storing a batch');
            },
            (err: unknown) => logger.warn({ err }, 'could not renew the sink lease'),
          );
        }, options.claimIdleMs / 6);
        const batch: BatchContext = {
          async writeGuard() {
            if (writes.signal.aborted || !(await renewNow())) {
              lose('lost the sink lease before a write; leaving the batch to the new holder');
              throw writes.signal.reason as LeaseLostError;
            }
            return writes.signal;
          },
        };
        try {
          await handle(records, batch);
        } finally {
          clearInterval(renew);
        }
      };

      const read = async (id: string, count: number, blockMs?: number) => {
        const args: (string | number)[] = ['GROUP', opts.group, opts.consumer, 'COUNT', count];
        if (blockMs !== undefined) args.push('BLOCK', Math.max(1, blockMs));
        const reply = (await reader.call('XREADGROUP', ...args, 'STREAMS', stream, id)) as
          | [string, StreamEntry[]][]
          | null;
        return reply?.[0]?.[1] ?? [];
      };

      /** Moves pending entries of the group idle at least `minIdleMs` to this consumer; the count moved. */
      const claim = async (minIdleMs: number, limit: number): Promise<number> => {
        let cursor = '0-0';
        let moved = 0;
        do {
          const reply = (await redis.call(
            'XAUTOCLAIM',
            stream,
            opts.group,
            opts.consumer,
            minIdleMs,
            cursor,
            'COUNT',
            Math.min(limit - moved, 1000),
            'JUSTID',
          )) as [string, string[]];
          cursor = reply[0];
          moved += reply[1].length;
        } while (cursor !== '0-0' && moved < limit);
        return moved;
      };

      // New entries, gathered until the batch is full or maxWaitMs passed since the first arrived.
      const readNew = async (): Promise<StreamEntry[]> => {
        const entries = await read('>', opts.maxBatchSize, opts.maxWaitMs);
        const deadline = Date.now() + opts.maxWaitMs;
        while (entries.length > 0 && entries.length < opts.maxBatchSize && !stopping) {
          const remaining = deadline - Date.now();
          if (remaining <= 0) break;
          const more = await read('>', opts.maxBatchSize - entries.length, remaining);
          if (more.length === 0) break;
          entries.push(...more);
        }
        return entries;
      };

      // Entries come from this consumer's pending list first (in stream order), then new ones. Entries
      // of a consumer that died for claimIdleMs join that list now and then; on taking the lease,
      // every other consumer's pending entries do, at once: the previous holder's unfinished batch
      // must be stored before anything newer, or a later copy of one of its events could win.
      let ownPending = true;
      const nextEntries = async (): Promise<StreamEntry[]> => {
        if (!ownPending && Date.now() - lastClaimAt >= options.claimIdleMs / 2) {
          lastClaimAt = Date.now();
          if ((await claim(options.claimIdleMs, opts.maxBatchSize)) > 0) ownPending = true;
        }
        if (ownPending) {
          const entries = await read('0', opts.maxBatchSize);
          if (entries.length > 0) return entries;
          ownPending = false;
        }
        return readNew();
      };

      const loop = async () => {
        let failures = 0;
        while (!stopping) {
          try {
            if (!(await holdLease())) {
              if (active) logger.warn({ consumer: opts.consumer }, 'lost the sink lease; standing by');
              active = false;
              await sleep(Math.min(options.claimIdleMs / 4, 250));
              continue;
            }
            if (!active) {
              active = true;
              ownPending = true;
              await claim(0, Number.POSITIVE_INFINITY);
              logger.info(
                { consumer: opts.consumer, group: opts.group },
                'holding the sink lease; consuming',
              );
            }
            const entries = await nextEntries();
            if (entries.length === 0) continue;
            const records = toRecords(entries);
            if (records.length > 0) await handleHoldingLease(records);
            await redis.xack(stream, opts.group, ...entries.map(([id]) => id));
            failures = 0;
            if (Date.now() - lastTrimAt > 1_000) {
              lastTrimAt = Date.now();
              await trimAcknowledged();
            }
          } catch (err) {
            // Whatever failed (Redis, the handler, the ack), the entries stay pending and come back.
            failures += 1;
            logger.warn({ err, failures }, 'event log batch failed; retrying');
            ownPending = true;
            await sleep(Math.min(100 * 2 ** failures, 5_000));
          }
        }
      };

      const done = loop().finally(async () => {
        reader.disconnect();
        // A standby takes over now rather than after the lease lapses.
        await redis.eval(RELEASE_LEASE, 1, lease, holder).catch(() => undefined);
      });
      return {
        done,
        async stop() {
          stopping = true;
          await done.catch(() => undefined);
        },
      };
    },

    async lag(group: string) {
      const info = (await groups()).find((g) => g.name === group);
      if (!info) return redis.xlen(stream);
      // `lag` is null when Redis cannot tell (after deletions); the stream length bounds it.
      const undelivered =
        info.lag === null || info.lag === undefined ? await redis.xlen(stream) : Number(info.lag);
      return undelivered + Number(info.pending);
    },

    async ping() {
      await redis.ping();
    },

    async close() {
      await redis.quit().catch(() => undefined);
    },
  };
}
