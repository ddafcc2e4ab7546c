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
});
