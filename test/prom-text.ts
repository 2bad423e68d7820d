// A strict reader of the Prometheus text exposition format (0.0.4), for the metrics tests:
// every line is a comment (# HELP / # TYPE), or a sample `name{l="v",...} value` whose family
// was typed first; histogram samples are name_bucket{le=...}, name_sum, name_count. Throws on
// anything else, so "a scrape parses" is a real check.

export interface Sample { name: string; labels: Record<string, string>; value: number }
export interface FamilyText { type: string; help: string; samples: Sample[] }

const sampleRe = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/;
const labelRe = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/y;

function parseValue(text: string): number {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (text === 'NaN') return NaN;
  if (!/^-?[0-9.]+(e[+-][0-9]+)?$/.test(text)) throw new Error(`bad sample value ${text}`);
  return Number(text);
}

function parseLabels(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  labelRe.lastIndex = 0;
  while (labelRe.lastIndex < text.length) {
    const m = labelRe.exec(text);
    if (!m) throw new Error(`bad labels {${text}}`);
    out[m[1]!] = m[2]!.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
  }
  return out;
}

/** The families of a scrape by name. */
export function parsePromText(text: string): Map<string, FamilyText> {
  const families = new Map<string, FamilyText>();
  if (!text.endsWith('\n')) throw new Error('scrape does not end with a newline');
  for (const line of text.slice(0, -1).split('\n')) {
    if (line.startsWith('# HELP ')) {
      const [name, ...help] = line.slice(7).split(' ');
      families.set(name!, { type: 'untyped', help: help.join(' '), samples: [] });
      continue;
    }
    if (line.startsWith('# TYPE ')) {
      const [name, type] = line.slice(7).split(' ');
      if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(type!)) throw new Error(`bad type: ${line}`);
      const f = families.get(name!) ?? { type: type!, help: '', samples: [] };
      f.type = type!;
      families.set(name!, f);
      continue;
    }
    const m = sampleRe.exec(line);
    if (!m) throw new Error(`bad line: ${JSON.stringify(line)}`);
    const name = m[1]!;
    const base = families.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '');
    const f = families.get(base);
    if (!f) throw new Error(`sample before its TYPE: ${line}`);
    if (base !== name && f.type !== 'histogram' && f.type !== 'summary') throw new Error(`suffixed sample of a ${f.type}: ${line}`);
    f.samples.push({ name, labels: parseLabels(m[3] ?? ''), value: parseValue(m[4]!) });
  }
  return families;
}

/** The value of the one sample `name` with `labels` (a subset match), or undefined. */
export function sampleValue(fams: Map<string, FamilyText>, name: string, labels: Record<string, string> = {}): number | undefined {
  const base = fams.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '');
  const f = fams.get(base);
  const s = f?.samples.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  return s?.value;
}
