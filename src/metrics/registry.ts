/**
 * A small Prometheus registry: counters, gauges and histograms, each a family of series told
 * apart by label values, rendered in the text exposition format (0.0.4) as Go's client_golang
 * renders it (families sorted by name, series by label values, Go's float formatting), so a
 * scrape of Concord reads like a scrape of etcd.
 *
 * Recording costs a field increment: a series is looked up once (`labels(...)` at wiring
 * time, kept by the caller) and then `inc()`/`observe()` touch only numbers. Gauges whose
 * value lives elsewhere (raft's commit index, the backend's size) are read at scrape time
 * through a callback instead of being copied on every change.
 */

export type MetricType = 'counter' | 'gauge' | 'histogram';

export class Counter {
  value = 0;
  inc(by = 1): void {
    this.value += by;
  }
}

export class Gauge {
  value = 0;
  set(v: number): void {
    this.value = v;
  }
  inc(by = 1): void {
    this.value += by;
  }
  dec(by = 1): void {
    this.value -= by;
  }
}

export class Histogram {
  /** counts[i] = observations <= upperBounds[i] (not cumulative; rendering accumulates). */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(readonly upperBounds: readonly number[]) {
    this.counts = new Float64Array(upperBounds.length);
  }
  observe(v: number): void {
    const b = this.upperBounds;
    for (let i = 0; i < b.length; i++) {
      if (v <= b[i]!) { this.counts[i]!++; break; }
    }
    this.sum += v;
    this.count++;
  }
}

type Series = Counter | Gauge | Histogram;

/**
 * One series and the start of each line it renders to (name and label text, which never
 * change once the series exists), made with the series (at wiring time, not per request and
 * not in a scrape on a loaded server). A scrape then writes numbers
 * only: rebuilding ~1,000 label texts each time (etcd's grpc_server_handled_total alone has
 * a series per method and code) made the render take a median 5.8 ms of the event loop (up to
 * 16.5) under the bench's load, 2.4 now (issue 14, the loop tracer's http.metrics span).
 */
interface Entry<S extends Series> {
  readonly values: readonly string[];
  readonly s: S;
  /** `name{labels} ` for a counter or gauge; for a histogram its buckets' (+Inf last), then _sum's and _count's. */
  readonly lineStarts: readonly string[];
}

/** One metric name: its help, type, label names and the series created so far. */
export class Family<S extends Series> {
  private readonly series = new Map<string, Entry<S>>();
  /** The series in rendering order; undefined once a series is added. */
  private sorted: Entry<S>[] | undefined;
  /** The family's `# HELP` and `# TYPE` lines. */
  readonly header: string;
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: MetricType,
    readonly labelNames: readonly string[],
    private readonly make: () => S,
    /** Read at scrape time instead of a stored value (gauges only). */
    readonly collect?: () => Array<{ values: readonly string[]; value: number }>,
  ) {
    this.header = `# HELP ${name} ${escapeHelp(help)}\n# TYPE ${name} ${type}`;
  }

  /** The series for these label values (created at 0 the first time). Keep it; do not call per request. */
  labels(...values: string[]): S {
    if (values.length !== this.labelNames.length) {
      throw new Error(`metric ${this.name}: ${values.length} label values for ${this.labelNames.length} labels`);
    }
    const key = values.join('\u0000');
    let e = this.series.get(key);
    if (e === undefined) {
      const series = this.make();
      e = { values, s: series, lineStarts: this.lineStartsOf(values, series) };
      this.series.set(key, e);
      this.sorted = undefined;
    }
    return e.s;
  }

  /** The series, sorted by label values as client_golang writes them. */
  entries(): readonly Entry<S>[] {
    this.sorted ??= [...this.series.values()].sort((a, b) => compareValues(a.values, b.values));
    return this.sorted;
  }

  /** Appends this family's sample lines to `out` (none for a collected family with no rows). */
  renderRows(out: string[]): void {
    if (this.collect) {
      for (const { values, value } of this.collect()) out.push(`${this.name}${labelText(this.labelNames, values)} ${goFloat(value)}`);
      return;
    }
    for (const e of this.entries()) {
      const starts = e.lineStarts;
      const s = e.s;
      if (s instanceof Histogram) {
        let cumulative = 0;
        for (let i = 0; i < s.counts.length; i++) {
          cumulative += s.counts[i]!;
          out.push(starts[i]! + goFloat(cumulative));
        }
        const n = s.counts.length;
        out.push(starts[n]! + goFloat(s.count), starts[n + 1]! + goFloat(s.sum), starts[n + 2]! + goFloat(s.count));
      } else {
        out.push(starts[0]! + goFloat(s.value));
      }
    }
  }

  private lineStartsOf(values: readonly string[], s: S): string[] {
    const { name, labelNames } = this;
    if (!(s instanceof Histogram)) return [`${name}${labelText(labelNames, values)} `];
    const withLe = [...labelNames, 'le'];
    const bounds = [...s.upperBounds.map(goFloat), '+Inf'];
    return [
      ...bounds.map((le) => `${name}_bucket${labelText(withLe, [...values, le])} `),
      `${name}_sum${labelText(labelNames, values)} `,
      `${name}_count${labelText(labelNames, values)} `,
    ];
  }
}

function compareValues(a: readonly string[], b: readonly string[]): number {
  for (let i = 0; i < a.length; i++) {
    if (a[i]! < b[i]!) return -1;
    if (a[i]! > b[i]!) return 1;
  }
  return 0;
}

export class Registry {
  private readonly families = new Map<string, Family<Series>>();
  /** The families in rendering order (by name); undefined once one is added or replaced. */
  private sorted: Family<Series>[] | undefined;
  /** Called once each render has read every family (see afterRender). */
  private readonly renderedHooks: Array<() => void> = [];

  /**
   * Calls `hook` at the end of every render, once all families are read: for a collector whose
   * reading starts an interval that should not count the scrape itself (the loop delay: a
   * sliced render's later turns are the scrape's own pauses).
   */
  afterRender(hook: () => void): void {
    this.renderedHooks.push(hook);
  }

  counter(name: string, help: string, labelNames: readonly string[] = []): Family<Counter> {
    return this.add(new Family(name, help, 'counter', labelNames, () => new Counter()));
  }

  gauge(name: string, help: string, labelNames: readonly string[] = []): Family<Gauge> {
    return this.add(new Family(name, help, 'gauge', labelNames, () => new Gauge()));
  }

  /** A gauge (or counter) whose value is read from `read` at each scrape. Replaces an earlier one of that name. */
  collected(name: string, help: string, type: 'gauge' | 'counter', read: () => number, labels: Record<string, string> = {}): void {
    const names = Object.keys(labels);
    const values = names.map((n) => labels[n]!);
    this.collectedRows(name, help, names, () => [{ values, value: read() }], type);
  }

  /** A family whose series are all read from `rows` at each scrape (none: the family is not shown). */
  collectedRows(name: string, help: string, labelNames: readonly string[],
    rows: () => Array<{ values: readonly string[]; value: number }>, type: 'gauge' | 'counter' = 'gauge'): void {
    this.families.delete(name);
    this.add(new Family(name, help, type, labelNames, () => new Gauge(), rows));
  }

  histogram(name: string, help: string, upperBounds: readonly number[], labelNames: readonly string[] = []): Family<Histogram> {
    return this.add(new Family(name, help, 'histogram', labelNames, () => new Histogram(upperBounds)));
  }

  private add<S extends Series>(f: Family<S>): Family<S> {
    if (this.families.has(f.name)) throw new Error(`metric ${f.name} registered twice`);
    this.families.set(f.name, f as unknown as Family<Series>);
    this.sorted = undefined;
    return f;
  }

  /** The text exposition format, families sorted by name (promhttp's order). */
  render(): string {
    const out: string[] = [];
    for (const f of this.inOrder()) renderFamily(f, out);
    this.rendered();
    return out.join('\n') + '\n';
  }

  /**
   * render()'s text, made over as many turns of the event loop as it takes to spend at most
   * about `sliceMs` of the loop in each (a family is never split). What a /metrics scrape
   * uses: the whole render is ~1-3 ms of the main thread on an idle server, and under the
   * bench's put load it took 3.5-16 ms on a slow day (issue 14, the loop tracer's
   * http.metrics span), a pause every client in flight waited out. Families are read in
   * different turns, as client_golang's collectors are read one by one: no scrape is an
   * atomic snapshot across metrics.
   */
  async renderInSlices(sliceMs = 1, onSlice?: (startMs: number, families: number) => void): Promise<string> {
    const out: string[] = [];
    let sliceStart = performance.now();
    let inSlice = 0;
    for (const f of this.inOrder()) {
      if (inSlice > 0 && performance.now() - sliceStart >= sliceMs) {
        onSlice?.(sliceStart, inSlice);
        await new Promise<void>((resolve) => setImmediate(resolve));
        sliceStart = performance.now();
        inSlice = 0;
      }
      renderFamily(f, out);
      inSlice++;
    }
    this.rendered();
    const text = out.join('\n') + '\n';
    onSlice?.(sliceStart, inSlice);
    return text;
  }

  private rendered(): void {
    for (const hook of this.renderedHooks) hook();
  }

  private inOrder(): readonly Family<Series>[] {
    this.sorted ??= [...this.families.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return this.sorted;
  }
}

/** Appends a family's header and sample lines to `out`; nothing for a family with no series (as client_golang). */
function renderFamily(f: Family<Series>, out: string[]): void {
  const at = out.length;
  out.push(f.header);
  f.renderRows(out);
  if (out.length === at + 1) out.length = at;
}

function labelText(names: readonly string[], values: readonly string[]): string {
  if (names.length === 0) return '';
  return '{' + names.map((n, i) => `${n}="${escapeLabel(values[i]!)}"`).join(',') + '}';
}

const escapeHelp = (s: string): string => s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
const escapeLabel = (s: string): string => s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

/**
 * A float as Go's strconv.FormatFloat(v, 'g', -1, 64) writes it (client_golang's format):
 * shortest round-trip digits; exponent form (two-digit exponent at least) when the decimal
 * exponent is below -4 or at least 6, e.g. 20480, 2.147483648e+09, 1e-05.
 */
export function goFloat(v: number): string {
  // Most samples are counts below a million: JavaScript writes those as Go does.
  if (Number.isInteger(v) && v > -1e6 && v < 1e6 && !Object.is(v, -0)) return String(v);
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  if (v === 0) return '-0';
  const [mant, expText] = v.toExponential().split('e') as [string, string];
  const exp = Number(expText);
  if (exp < -4 || exp >= 6) {
    const e = Math.abs(exp);
    return `${mant}e${exp < 0 ? '-' : '+'}${e < 10 ? '0' : ''}${e}`;
  }
  return String(v);
}
