// The text forms Go gives etcdctl's output: encoding/json of gogoproto structs (proto field
// names, omitempty, uint64 as exact numbers, bytes as base64, oneofs under their Go field
// name), fmt's %q, time.Duration's String, go-humanize's Bytes and tablewriter's tables.

/** Proto fields whose original names are not snake_case (ts-proto camel-cases every name). */
const protoCamelNames = new Set([
  'ID', 'TTL', 'clientURLs', 'dbSize', 'dbSizeInUse', 'grantedTTL', 'isLearner', 'keyPermission',
  'memberID', 'peerURLs', 'permType', 'raftAppliedIndex', 'raftIndex', 'raftTerm', 'targetID',
]);

/** ts-proto oneof members -> [Go interface field, Go wrapper field]. */
const oneofs: Record<string, [string, string]> = {
  responseRange: ['Response', 'ResponseRange'], responsePut: ['Response', 'ResponsePut'],
  responseDeleteRange: ['Response', 'ResponseDeleteRange'], responseTxn: ['Response', 'ResponseTxn'],
};

function protoName(key: string, parent: string): string {
  if (parent !== 'header' && protoCamelNames.has(key)) return key;
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

function isEmpty(v: unknown): boolean {
  return v === undefined || v === null || v === false || v === 0 || v === 0n || v === ''
    || (Array.isArray(v) && v.length === 0) || (v instanceof Uint8Array && v.length === 0);
}

/** A decoded message as Go's json.Marshal prints its gogoproto struct. */
export function goJson(v: unknown, parent = ''): string {
  if (v instanceof Uint8Array) return JSON.stringify(Buffer.from(v).toString('base64'));
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (typeof v === 'string') return goJsonString(v);
  if (v === undefined || v === null) return 'null';
  if (Array.isArray(v)) return `[${v.map((x) => goJson(x, parent)).join(',')}]`;
  const parts: string[] = [];
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (isEmpty(x)) continue;
    const one = oneofs[k];
    if (one) { parts.push(`"${one[0]}":{"${one[1]}":${goJson(x, k)}}`); continue; }
    parts.push(`${JSON.stringify(protoName(k, parent))}:${goJson(x, k)}`);
  }
  return `{${parts.join(',')}}`;
}

/** A JSON object with the given Go field names, in order, nothing omitted unless omitEmpty lists it. */
export function goStruct(fields: ReadonlyArray<[string, unknown]>, omitEmpty: ReadonlySet<string> = new Set()): string {
  // A Go field named Header holds a ResponseHeader: its fields keep their snake_case names.
  return `{${fields.filter(([k, v]) => !(omitEmpty.has(k) && isEmpty(v))).map(([k, v]) => `${JSON.stringify(k)}:${goJson(v, k === 'Header' ? 'header' : k)}`).join(',')}}`;
}

/** Go's encoding/json string escaping (it also escapes <, >, & and U+2028/2029). */
export function goJsonString(s: string): string {
  return JSON.stringify(s).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Go's %q of a byte string. */
export function goQuote(b: Buffer | string): string {
  const buf = typeof b === 'string' ? Buffer.from(b) : b;
  let out = '"';
  let i = 0;
  while (i < buf.length) {
    const c = buf[i]!;
    if (c < 0x80) {
      i++;
      switch (c) {
        case 0x22: out += '\\"'; break;
        case 0x5c: out += '\\\\'; break;
        case 0x07: out += '\\a'; break;
        case 0x08: out += '\\b'; break;
        case 0x0c: out += '\\f'; break;
        case 0x0a: out += '\\n'; break;
        case 0x0d: out += '\\r'; break;
        case 0x09: out += '\\t'; break;
        case 0x0b: out += '\\v'; break;
        default: out += c < 0x20 || c === 0x7f ? `\\x${c.toString(16).padStart(2, '0')}` : String.fromCharCode(c);
      }
      continue;
    }
    const len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
    const ch = len > 1 ? buf.subarray(i, i + len).toString('utf8') : '\ufffd';
    if (len === 1 || ch.includes('\ufffd') || Buffer.byteLength(ch) !== len) {
      out += `\\x${c.toString(16).padStart(2, '0')}`;
      i++;
      continue;
    }
    out += /\p{L}|\p{M}|\p{N}|\p{P}|\p{S}/u.test(ch) ? ch : `\\u${ch.codePointAt(0)!.toString(16).padStart(4, '0')}`;
    i += len;
  }
  return out + '"';
}

/** Go's time.Duration.String for a duration in nanoseconds. */
export function goDuration(ns: number): string {
  if (ns === 0) return '0s';
  const trim = (x: number, digits: number) => x.toFixed(digits).replace(/\.?0+$/, '');
  if (ns < 1000) return `${ns}ns`;
  if (ns < 1e6) return `${trim(ns / 1e3, 3)}µs`;
  if (ns < 1e9) return `${trim(ns / 1e6, 6)}ms`;
  const totalS = ns / 1e9;
  const h = Math.floor(totalS / 3600);
  const m = Math.floor((totalS % 3600) / 60);
  const s = totalS - h * 3600 - m * 60;
  return `${h > 0 ? `${h}h` : ''}${h > 0 || m > 0 ? `${m}m` : ''}${trim(s, 9)}s`;
}

/** go-humanize's Bytes: the one implementation, shared with concordutl and the progress bars. */
export { humanizeBytes } from '../log/index.js';

/** etcdctl's --hex form of bytes: \x.. per byte. */
export function hexBytes(b: Buffer): string {
  let s = '';
  for (const c of b) s += `\\x${c.toString(16).padStart(2, '0')}`;
  return s;
}

/** tablewriter as etcdctl configures it: upper-case centred header, cells aligned right. */
export function renderTable(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => [...(r[i] ?? '')].length)));
  const line = `+${widths.map((w) => '-'.repeat(w + 2)).join('+')}+\n`;
  const center = (s: string, w: number) => {
    const gap = w - s.length;
    const left = Math.floor(gap / 2);
    return ' '.repeat(left) + s + ' '.repeat(gap - left);
  };
  const head = `|${header.map((h, i) => ` ${center(h.toUpperCase(), widths[i]!)} `).join('|')}|\n`;
  const body = rows.map((r) => `|${r.map((c, i) => ` ${' '.repeat(widths[i]! - [...c].length)}${c} `).join('|')}|\n`).join('');
  return line + head + line + body + line;
}
