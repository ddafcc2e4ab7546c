import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** Prometheus metrics, one registry per process (tests build several apps, so no global registry). */
export type Metrics = ReturnType<typeof createMetrics>;

export function createMetrics(options: { defaults?: boolean } = {}) {
  const registry = new Registry();
  if (options.defaults) collectDefaultMetrics({ register: registry, prefix: 'meterline_' });
  return {
    registry,
    eventsAccepted: new Counter({
      name: 'meterline_events_accepted_total',
      help: 'Events acknowledged by the event log after a successful ingest request',
      registers: [registry],
    }),
    eventsRejected: new Counter({
      name: 'meterline_events_rejected_total',
      help: 'Ingest requests rejected, by reason',
      labelNames: ['reason'],
      registers: [registry],
    }),
    eventsStored: new Counter({
      name: 'meterline_events_stored_total',
      help: 'Events inserted into ClickHouse by the sink',
      registers: [registry],
    }),
    duplicatesDropped: new Counter({
      name: 'meterline_duplicates_dropped_total',
      help: 'Events the sink did not insert because their identity was already stored or repeated in the batch',
      registers: [registry],
    }),
    deadLetters: new Counter({
      name: 'meterline_dead_letters_total',
      help: 'Log records the sink could not store, kept in the dead_letters table',
      labelNames: ['reason'],
      registers: [registry],
    }),
    sinkLag: new Gauge({
      name: 'meterline_sink_lag',
      help: 'Log messages not yet acknowledged by the sink group',
      registers: [registry],
    }),
    sinkFailures: new Counter({
      name: 'meterline_sink_failures_total',
      help: 'Failed ClickHouse writes of the sink, by kind: data (set aside), outage (retried), unknown (retried, then split)',
      labelNames: ['kind'],
      registers: [registry],
    }),
    sinkLastStoredSeconds: new Gauge({
      name: 'meterline_sink_last_stored_timestamp_seconds',
      help: 'When this sink last stored a batch (Unix time)',
      registers: [registry],
    }),
    sinkBatchSize: new Histogram({
      name: 'meterline_sink_batch_size',
      help: 'Records per sink batch',
      buckets: [1, 10, 100, 500, 1000, 5000, 10000],
      registers: [registry],
    }),
    sinkBatchSeconds: new Histogram({
      name: 'meterline_sink_batch_seconds',
      help: 'Time to store and acknowledge one sink batch',
      buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
  };
}
