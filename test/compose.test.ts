import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CONFIG_ENV_VARS, loadConfig } from '../src/config.ts';

// No Docker engine here, so these check docker-compose.yml and .env.example as files: the mistakes they
// catch (a typo'd variable, a host that is no service, a missing dependency) otherwise show up only at
// `docker compose up`.

type Service = {
  build?: string | { context?: string };
  environment?: Record<string, unknown> | string[];
  depends_on?: string[] | Record<string, unknown>;
};

// merge: compose honours `<<: *anchor`, so the test must resolve it the same way.
const compose = parse(readFileSync(new URL('../docker-compose.yml', import.meta.url), 'utf8'), {
  merge: true,
}) as { services: Record<string, Service> };
const services = compose.services;
const envExample = readFileSync(new URL('../.env.example', import.meta.url), 'utf8');

// What a plain `docker compose up` passes: ${NAME:-default} takes its default, $$ is a literal $.
function interpolate(value: string): string {
  return value.replace(/\$\$|\$\{\w+(?::?[-?]([^}]*))?\}/g, (match, fallback?: string) =>
    match === '$$' ? '$' : (fallback ?? ''),
  );
}

/** A service's environment in either compose form; a bare name (passed through from the host) is undefined. */
function environmentOf(service: Service): Record<string, string | undefined> {
  const env = service.environment ?? {};
  const entries: [string, unknown][] = Array.isArray(env)
    ? env.map((line) => {
        const eq = line.indexOf('=');
        return eq < 0 ? [line, undefined] : [line.slice(0, eq), line.slice(eq + 1)];
      })
    : Object.entries(env);
  return Object.fromEntries(
    entries.map(([name, value]) => [name, value == null ? undefined : interpolate(String(value))]),
  );
}

function dependenciesOf(service: Service): string[] {
  const deps = service.depends_on ?? [];
  return Array.isArray(deps) ? deps : Object.keys(deps);
}

/** Everything compose starts before `name`, following depends_on through other services. */
function transitiveDependencies(name: string, seen = new Set<string>()): Set<string> {
  for (const dep of dependenciesOf(services[name] ?? {})) {
    if (seen.has(dep)) continue;
    seen.add(dep);
    transitiveDependencies(dep, seen);
  }
  return seen;
}

function isApp(service: Service): boolean {
  const context = typeof service.build === 'string' ? service.build : service.build?.context;
  return context === '.' || context === './';
}

const appServices = Object.keys(services).filter((name) => isApp(services[name] as Service));

/** Names assigned in .env.example, commented out (`# NAME=`) or not, in order of appearance. */
const exampleNames = [...envExample.matchAll(/^(?:#\s*)?([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1] as string);

describe('docker-compose.yml', () => {
  it('has the Meterline roles, built from this repository', () => {
    // Guards the per-service checks below against silently selecting nothing.
    expect(appServices).toEqual(
      expect.arrayContaining(['migrate', 'meterline-api', 'meterline-sink', 'meterline-worker']),
    );
  });

  it('depends only on services it defines', () => {
    for (const [name, service] of Object.entries(services)) {
      for (const dep of dependenciesOf(service)) {
        expect(Object.keys(services), `${name} depends_on unknown service ${dep}`).toContain(dep);
      }
    }
  });

  describe.each(appServices)('%s', (name) => {
    const env = environmentOf(services[name] as Service);

    it('uses Kafka and names every dependency it must reach', () => {
      expect(env.EVENT_LOG, `${name}: EVENT_LOG`).toBe('kafka');
      for (const variable of ['KAFKA_BROKERS', 'CLICKHOUSE_URL', 'DATABASE_URL', 'REDIS_URL']) {
        expect(env[variable], `${name}: ${variable} must be set (the default is loopback)`).toBeTruthy();
      }
    });

    it('reaches only hosts that are compose services it starts after', () => {
      const hosts: [string, string][] = [
        ...(env.KAFKA_BROKERS ?? '')
          .split(',')
          .map((broker): [string, string] => ['KAFKA_BROKERS', new URL(`kafka://${broker.trim()}`).hostname]),
        ...['CLICKHOUSE_URL', 'DATABASE_URL', 'REDIS_URL'].map((variable): [string, string] => [
          variable,
          new URL(env[variable] ?? 'missing://').hostname,
        ]),
      ];
      const startsAfter = transitiveDependencies(name);
      for (const [variable, host] of hosts) {
        expect(Object.keys(services), `${name}: ${variable} host ${host} is not a compose service`).toContain(
          host,
        );
        // Otherwise compose may start the app before the service it needs exists.
        expect(
          [...startsAfter],
          `${name}: ${variable} host ${host} is not in its depends_on chain`,
        ).toContain(host);
      }
    });

    it('passes a configuration loadConfig accepts', () => {
      expect(() => loadConfig(env), `${name}: loadConfig`).not.toThrow();
      expect(loadConfig(env).eventLog.kind, `${name}: event log`).toBe('kafka');
    });

    it('sets only variables the app reads', () => {
      const unknown = Object.keys(env).filter((variable) => !CONFIG_ENV_VARS.includes(variable));
      expect(unknown, `${name}: not in CONFIG_ENV_VARS (typo?)`).toEqual([]);
    });
  });

  it('gives the app the credentials the data services are started with', () => {
    const postgres = environmentOf(services.postgres as Service);
    const clickhouse = environmentOf(services.clickhouse as Service);
    for (const name of appServices) {
      const env = environmentOf(services[name] as Service);
      const db = new URL(env.DATABASE_URL ?? 'missing://');
      expect(decodeURIComponent(db.username), `${name}: DATABASE_URL user`).toBe(
        postgres.POSTGRES_USER ?? 'postgres',
      );
      // Trust auth needs no password; otherwise the URL must carry the server's.
      if (postgres.POSTGRES_HOST_AUTH_METHOD !== 'trust') {
        expect(decodeURIComponent(db.password), `${name}: DATABASE_URL password`).toBe(
          postgres.POSTGRES_PASSWORD,
        );
      }
      expect(env.CLICKHOUSE_USER ?? 'default', `${name}: CLICKHOUSE_USER`).toBe(
        clickhouse.CLICKHOUSE_USER ?? 'default',
      );
      expect(env.CLICKHOUSE_PASSWORD ?? '', `${name}: CLICKHOUSE_PASSWORD`).toBe(
        clickhouse.CLICKHOUSE_PASSWORD ?? '',
      );
    }
  });
});

describe('.env.example', () => {
  it('documents every configuration variable', () => {
    const missing = CONFIG_ENV_VARS.filter((name) => !exampleNames.includes(name));
    expect(missing, 'in CONFIG_ENV_VARS but not in .env.example').toEqual([]);
  });

  it('names only configuration variables, each once', () => {
    const unknown = exampleNames.filter((name) => !CONFIG_ENV_VARS.includes(name));
    expect(unknown, 'in .env.example but not in CONFIG_ENV_VARS').toEqual([]);
    const repeated = exampleNames.filter((name, i) => exampleNames.indexOf(name) !== i);
    expect(repeated, 'named more than once in .env.example').toEqual([]);
  });

  it('shows the defaults', () => {
    // Uncommented lines only: those are what a copied .env would set.
    const env = Object.fromEntries(
      [...envExample.matchAll(/^([A-Z][A-Z0-9_]*)=(.*)$/gm)].map((m) => [m[1] as string, m[2] as string]),
    );
    expect(loadConfig(env), '.env.example values differ from the defaults in src/config.ts').toEqual(
      loadConfig({}),
    );
  });
});
