import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { parse } from 'yaml';
import { z } from 'zod';
import { NAMESPACE_PATTERN } from '../keys/service.ts';
import { AppError } from '../lib/errors.ts';
import { MeterCreate } from './meter.ts';
import type { MeterService } from './service.ts';

/** The meters file: YAML (or JSON, which YAML reads too), one list of meters, each with its namespace. */
export const MetersFile = z.object({
  meters: z.array(z.intersection(z.object({ namespace: z.string().regex(NAMESPACE_PATTERN) }), MeterCreate)),
});

/** A live meter by slug, created if missing; a replica that loses the race to create reads the winner's. */
async function findOrCreate(meters: MeterService, namespace: string, declared: MeterCreate) {
  const existing = (await meters.list(namespace)).find((m) => m.slug === declared.slug);
  if (existing) return { meter: existing, created: false };
  try {
    return { meter: await meters.create(namespace, declared), created: true };
  } catch (error) {
    if (!(error instanceof AppError && error.code === 'ML_ERR_METER_CONFLICT')) throw error;
    return { meter: await meters.get(namespace, declared.slug), created: false };
  }
}

/**
 * Creates the meters a file declares, and updates what may change (name, description, metadata,
 * group-by). It never deletes a meter, and refuses to start when a declared meter differs from the
 * stored one in what cannot change (aggregation, event type, value, eventFrom), rather than
 * silently re-meter. Safe for several replicas to apply at once.
 */
export async function applyMetersFile(path: string, meters: MeterService, logger: Logger): Promise<void> {
  const parsed = MetersFile.safeParse(parse(await readFile(path, 'utf8')));
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new Error(`${path}: ${issues}`);
  }
  for (const { namespace, ...declared } of parsed.data.meters) {
    const { meter: existing, created } = await findOrCreate(meters, namespace, declared);
    if (created) {
      logger.info({ namespace, slug: declared.slug }, 'meter created from file');
      continue;
    }
    const fixed: [string, unknown, unknown][] = [
      ['aggregation', existing.aggregation, declared.aggregation],
      ['eventType', existing.eventType, declared.eventType],
      ['valueProperty', existing.valueProperty ?? undefined, declared.valueProperty],
      // Compared as instants: the file may spell the stored time with another offset.
      [
        'eventFrom',
        existing.eventFrom?.getTime(),
        declared.eventFrom === undefined ? undefined : Date.parse(declared.eventFrom),
      ],
    ];
    const changed = fixed.filter(([, was, now]) => was !== now).map(([field]) => field);
    if (changed.length > 0) {
      throw new Error(
        `${path}: meter ${namespace}/${declared.slug} differs from the stored one in ${changed.join(', ')}, which cannot change; ` +
          'create a meter with a new slug instead',
      );
    }
    await meters.update(namespace, existing.id, {
      name: declared.name ?? declared.slug,
      description: declared.description,
      metadata: declared.metadata,
      groupBy: declared.groupBy ?? {},
    });
  }
}
