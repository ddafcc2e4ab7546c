import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import type { EventLog } from './event-log.ts';
import { createKafkaLog } from './kafka.ts';
import { createRedisStreamsLog } from './redis-streams.ts';

export function createEventLog(config: Config, logger: Logger): EventLog {
  const log = config.eventLog;
  // The same promise on both transports: a silent consumer's messages move after claimIdleMs
  // (Kafka brokers refuse session timeouts under group.min.session.timeout.ms, 6 s by default).
  if (log.kind === 'kafka')
    return createKafkaLog({ ...log, sessionTimeoutMs: config.sink.claimIdleMs }, logger);
  return createRedisStreamsLog(
    new Redis(config.redis.url, { maxRetriesPerRequest: 3 }),
    { stream: log.stream, maxLength: log.maxLength, claimIdleMs: config.sink.claimIdleMs },
    logger,
  );
}
