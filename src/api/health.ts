/**
 * etcd's health endpoints: /health as etcd 3.4 answers it (with 3.5's ?exclude= and
 * ?serializable=true), and /livez, /readyz with their per-check sub-paths as etcd 3.5.11+
 * serves them (`[+]name ok` lines with ?verbose, `?exclude=name`). Pure over a `HealthHost`:
 * the routing and the writing of replies are http.ts's.
 */
import type { HealthQuery, HealthReport } from '../server/index.js';
import { serverMetrics } from '../metrics/index.js';

export interface HealthHost {
  /** /health's check (server's checkHealth). */
  health(q: HealthQuery): HealthReport | Promise<HealthReport>;
  /** The probes' checks; absent (the worker-thread mode) means /livez and /readyz answer 404. */
  probes?: ProbeHost;
}

/** What /livez and /readyz ask of the member. Each read rejects with the error etcd would report. */
export interface ProbeHost {
  serializableRead(): Promise<void>;
  linearizableRead(): Promise<void>;
  activeAlarms(): string[];
}

export interface Reply {
  status: number;
  /** Go's http.Error (text/plain, nosniff, trailing newline) or a plain body. */
  kind: 'error' | 'text' | 'json-as-text';
  body: string;
  allowGet?: boolean;
}

const methodNotAllowed: Reply = { status: 405, kind: 'error', body: 'Method Not Allowed', allowGet: true };

/** GET /health (3.4's bodies: no reason field). */
export async function healthReply(method: string, query: URLSearchParams, host: HealthHost): Promise<Reply> {
  if (method !== 'GET') return methodNotAllowed;
  const q: HealthQuery = {
    excludedAlarms: new Set(query.getAll('exclude').filter((a) => a !== '')),
    serializable: query.get('serializable') === 'true',
  };
  let h: HealthReport;
  try {
    h = await host.health(q);
  } catch (e) {
    h = { health: false, reason: (e as Error).message };
  }
  if (h.health) {
    serverMetrics.healthSuccess.inc();
    return { status: 200, kind: 'json-as-text', body: '{"health":"true"}' };
  }
  serverMetrics.healthFailures.inc();
  return { status: 503, kind: 'error', body: '{"health":"false"}' };
}

type Check = (p: ProbeHost) => Promise<void>;

const alarmCheck = (alarm: string): Check => async (p) => {
  if (p.activeAlarms().includes(alarm)) throw new Error(`alarm activated: ${alarm}`);
};

/** The checks of each probe, in the order Concord reports them (etcd's order is Go map order). */
const probes: Record<'livez' | 'readyz', ReadonlyArray<[string, Check]>> = {
  livez: [['serializable_read', (p) => p.serializableRead()]],
  readyz: [
    ['data_corruption', alarmCheck('CORRUPT')],
    ['serializable_read', (p) => p.serializableRead()],
    ['linearizable_read', (p) => p.linearizableRead()],
  ],
};

/** GET /livez, /readyz, or one check's sub-path (/readyz/linearizable_read); undefined: not a probe path. */
export async function probeReply(method: string, path: string, query: URLSearchParams, host: HealthHost): Promise<Reply | undefined> {
  const [, root, check, ...rest] = path.split('/');
  if ((root !== 'livez' && root !== 'readyz') || rest.length > 0 || host.probes === undefined) return undefined;
  const all = probes[root];
  let chosen: ReadonlyArray<[string, Check]>;
  if (check === undefined) {
    const excluded = new Set(query.getAll('exclude'));
    chosen = all.filter(([name]) => !excluded.has(name));
  } else {
    chosen = all.filter(([name]) => name === check);
    if (chosen.length === 0) return undefined;
  }
  if (method !== 'GET') return methodNotAllowed;
  let lines = '';
  let failed = false;
  for (const [name, run] of chosen) {
    try {
      await run(host.probes);
      lines += `[+]${name} ok\n`;
    } catch (e) {
      failed = true;
      lines += `[-]${name} failed: ${(e as Error).message}\n`;
    }
  }
  // Failures always say why; success lists the checks only when asked (?verbose).
  if (failed) return { status: 503, kind: 'error', body: lines };
  return { status: 200, kind: 'text', body: (query.has('verbose') ? lines : '') + 'ok\n' };
}
