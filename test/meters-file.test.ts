import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { applyMetersFile } from '../src/meters/config-file.ts';
import { createMeterService } from '../src/meters/service.ts';
import { useTestApp } from './support/env.ts';

const ctx = useTestApp();
const silent = pino({ level: 'silent' });
const dir = mkdtempSync(join(tmpdir(), 'mlt-meters-'));

function file(name: string, text: string) {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const yaml = (name: string, aggregation = 'SUM') => `
meters:
  - namespace: acme
    slug: api_calls
    name: ${name}
    aggregation: ${aggregation}
    eventType: request
    valueProperty: $.duration_ms
    groupBy:
      route: $.route
  - namespace: globex
    slug: jobs
    aggregation: COUNT
    eventType: ci-job
`;

describe('meters declared in a file', () => {
  it('creates them, updates what may change, and is safe to apply again', async () => {
    const meters = createMeterService({ db: ctx.env.db, ch: ctx.env.ch }, { maxWindows: 1000 });
    const path = file('meters.yaml', yaml('API calls'));
    await applyMetersFile(path, meters, silent);
    await applyMetersFile(path, meters, silent);
    expect((await meters.list('acme')).map((m) => [m.slug, m.name, m.aggregation, m.groupBy])).toEqual([
      ['api_calls', 'API calls', 'SUM', { route: '$.route' }],
    ]);
    expect((await meters.list('globex')).map((m) => m.slug)).toEqual(['jobs']);

    await applyMetersFile(file('renamed.yaml', yaml('Requests')), meters, silent);
    expect((await meters.get('acme', 'api_calls')).name).toBe('Requests');

    // A meter left out of the file is kept.
    await applyMetersFile(file('fewer.yaml', 'meters: []\n'), meters, silent);
    expect((await meters.list('globex')).map((m) => m.slug)).toEqual(['jobs']);
  });

  it('refuses a change of aggregation, and a malformed file, naming what is wrong', async () => {
    const meters = createMeterService({ db: ctx.env.db, ch: ctx.env.ch }, { maxWindows: 1000 });
    await expect(
      applyMetersFile(file('changed.yaml', yaml('API calls', 'MAX')), meters, silent),
    ).rejects.toThrow(/api_calls differs from the stored one in aggregation/);
    expect((await meters.get('acme', 'api_calls')).aggregation).toBe('SUM');
    await expect(
      applyMetersFile(
        file('bad.yaml', 'meters:\n  - namespace: acme\n    slug: x\n    aggregation: SUM\n'),
        meters,
        silent,
      ),
    ).rejects.toThrow(/meters\.0\.eventType/);
  });

  it('lets replicas that start at once race to create a meter', async () => {
    const meters = createMeterService({ db: ctx.env.db, ch: ctx.env.ch }, { maxWindows: 1000 });
    const path = file(
      'race.yaml',
      yaml('API calls').replaceAll('acme', 'initech').replaceAll('globex', 'umbrella'),
    );
    await Promise.all([1, 2, 3, 4].map(() => applyMetersFile(path, meters, silent)));
    expect((await meters.list('initech')).map((m) => m.slug)).toEqual(['api_calls']);
    // A replica whose list predates the winner's create meets the conflict, and checks the winner's meter.
    const stale = { ...meters, list: async () => [] };
    await applyMetersFile(path, stale, silent);
    await expect(
      applyMetersFile(
        file('race-changed.yaml', yaml('API calls', 'MAX').replaceAll('acme', 'initech')),
        stale,
        silent,
      ),
    ).rejects.toThrow(/initech\/api_calls differs from the stored one in aggregation/);
  });

  it('applies eventFrom on create and refuses to change it', async () => {
    const meters = createMeterService({ db: ctx.env.db, ch: ctx.env.ch }, { maxWindows: 1000 });
    const declare = (eventFrom: string) =>
      file(
        'event-from.yaml',
        `meters:\n  - namespace: hooli\n    slug: calls\n    aggregation: COUNT\n    eventType: call\n    eventFrom: ${eventFrom}\n`,
      );
    await applyMetersFile(declare('2026-01-01T00:00:00Z'), meters, silent);
    expect((await meters.get('hooli', 'calls')).eventFrom?.toISOString()).toBe('2026-01-01T00:00:00.000Z');
    // The same instant with another offset is no change.
    await applyMetersFile(declare('2026-01-01T01:00:00+01:00'), meters, silent);
    await expect(applyMetersFile(declare('2025-01-01T00:00:00Z'), meters, silent)).rejects.toThrow(
      /hooli\/calls differs from the stored one in eventFrom/,
    );
    await expect(
      applyMetersFile(
        file(
          'no-event-from.yaml',
          'meters:\n  - namespace: hooli\n    slug: calls\n    aggregation: COUNT\n    eventType: call\n',
        ),
        meters,
        silent,
      ),
    ).rejects.toThrow(/eventFrom/);
    expect((await meters.get('hooli', 'calls')).eventFrom?.toISOString()).toBe('2026-01-01T00:00:00.000Z');
  });
});
