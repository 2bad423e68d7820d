/**
 * `concord gateway start`: etcd 3.4's `etcd gateway start` (etcdmain/gateway.go) — its
 * cobra flags, help texts, checks and messages, then the L4 proxy of gateway-proxy/.
 * DNS SRV discovery (--discovery-srv) is refused with a message: list members with --endpoints.
 */
import { lookup } from 'node:dns/promises';
import { createLogger } from '../log/index.js';
import { TcpProxy, type ProxyEndpoint } from '../gateway-proxy/index.js';
import { CtlExit, parseFlags, type FlagSpec } from '../ctl/index.js';

export interface GatewayIo {
  stdout(text: string): void;
  stderr(text: string): void;
}

const gatewayHelp = `gateway related command

Usage:
  etcd gateway [command]

Available Commands:
  start       start the gateway

Flags:
  -h, --help   help for gateway

Use "etcd gateway [command] --help" for more information about a command.
`;

const startUsage = `Usage:
  etcd gateway start [flags]

Flags:
      --discovery-srv string        DNS domain used to bootstrap initial cluster
      --discovery-srv-name string   service name to query when using DNS discovery
      --endpoints strings           comma separated etcd cluster endpoints (default [127.0.0.1:2379])
  -h, --help                        help for start
      --insecure-discovery          accept insecure SRV records
      --listen-addr string          listen address (default "127.0.0.1:23790")
      --retry-delay duration        duration of delay before retrying failed endpoints (default 1m0s)
      --trusted-ca-file string      path to the client server TLS CA file for verifying the discovered endpoints when discovery-srv is provided.
`;

const startFlags: FlagSpec[] = [
  { name: 'listen-addr', kind: 'string', default: '127.0.0.1:23790' },
  { name: 'discovery-srv', kind: 'string', default: '' },
  { name: 'discovery-srv-name', kind: 'string', default: '' },
  { name: 'insecure-discovery', kind: 'bool', default: false },
  { name: 'trusted-ca-file', kind: 'string', default: '' },
  { name: 'endpoints', kind: 'strings', default: ['127.0.0.1:2379'] },
  { name: 'retry-delay', kind: 'duration', default: 60_000 },
  { name: 'help', short: 'h', kind: 'bool', default: false },
];

/** Go's net.SplitHostPort, or undefined where it fails. */
function splitHostPort(hostport: string): { host: string; port: string } | undefined {
  if (hostport.startsWith('[')) {
    const m = /^\[([^[\]]*)\]:([^:[\]]*)$/.exec(hostport);
    return m ? { host: m[1]!, port: m[2]! } : undefined;
  }
  const colon = hostport.lastIndexOf(':');
  if (colon < 0) return undefined;
  const host = hostport.slice(0, colon);
  const port = hostport.slice(colon + 1);
  return /[:[\]]/.test(host) || /[[\]]/.test(port) ? undefined : { host, port };
}

/** gateway.go's stripSchema: "http://host:port/..." → "host:port"; anything url.Parse gives no host keeps its text. */
function stripScheme(ep: string): string {
  const m = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/([^/?#]*)/.exec(ep);
  if (!m) return ep;
  const authority = m[1]!.slice(m[1]!.lastIndexOf('@') + 1);
  return authority === '' ? ep : authority;
}

/** fmt.Sscanf("%d") into a uint16: the leading digits, 0 when there are none or they overflow. */
function portOf(p: string): number {
  const m = /^[+]?\d+/.exec(p);
  const n = m ? Number(m[0]) : 0;
  return n > 65535 ? 0 : n;
}

/** net.LookupHost: every address of a name (an IP literal is itself); undefined when it fails. */
async function lookupHost(host: string): Promise<string[] | undefined> {
  if (host === '') return undefined;
  try {
    return (await lookup(host, { all: true })).map((a) => a.address);
  } catch {
    return undefined;
  }
}

class GatewayExit extends Error {
  constructor(readonly code: number, readonly stdout = '', readonly stderr = '') { super(`exit ${code}`); }
}

/** What startGateway checks before it listens; throws GatewayExit with etcd's text. */
async function checkedEndpoints(values: Map<string, unknown>): Promise<{ endpoints: ProxyEndpoint[]; listenHost: string; listenPort: number }> {
  if (values.get('discovery-srv') !== '') {
    throw new GatewayExit(1, '', 'concord gateway: --discovery-srv (DNS SRV discovery) is not supported; list the members with --endpoints\n');
  }
  const endpoints: ProxyEndpoint[] = [];
  for (const ep of (values.get('endpoints') as string[]).map(stripScheme)) {
    const hp = splitHostPort(ep);
    if (!hp) throw new GatewayExit(1, `error parsing endpoint ${JSON.stringify(ep)}`);
    endpoints.push({ host: hp.host, port: portOf(hp.port) });
  }
  const listenAddr = values.get('listen-addr') as string;
  const listen = splitHostPort(listenAddr);
  if (!listen) throw new GatewayExit(1, `failed to validate listen address: ${listenAddr}\n`);
  const listenAddrs = await lookupHost(listen.host);
  if (!listenAddrs) throw new GatewayExit(1, `failed to resolve listen host: ${listen.host}\n`);
  for (const ep of endpoints) {
    const addrs = await lookupHost(ep.host);
    if (!addrs) throw new GatewayExit(1, `failed to resolve endpoint host: ${ep.host}\n`);
    if (String(ep.port) !== listen.port) continue;
    const same = addrs.find((a) => listenAddrs.includes(a));
    if (same !== undefined) {
      throw new GatewayExit(1, `SRV or endpoint (${ep.host}:${ep.port}->${same}:${ep.port}) should not resolve to the gateway listen addr (${listenAddr})\n`);
    }
  }
  if (endpoints.length === 0) throw new GatewayExit(1, 'no endpoints found\n');
  return { endpoints, listenHost: listen.host, listenPort: Number(listen.port) };
}

/** Go's net.Listen error text for the common failures. */
function listenError(addr: string, e: NodeJS.ErrnoException): string {
  if (e.code === 'EADDRINUSE') return `listen tcp ${addr}: bind: address already in use`;
  if (e.code === 'EADDRNOTAVAIL') return `listen tcp ${addr}: bind: cannot assign requested address`;
  if (e.code === 'EACCES') return `listen tcp ${addr}: bind: permission denied`;
  return `listen tcp ${addr}: ${e.message}`;
}

/**
 * Runs `concord gateway ...` (argv after "gateway"). Resolves to an exit code, or to
 * undefined once the proxy is listening (it then runs until the process is signalled, as
 * etcd's does).
 */
export async function runGateway(argv: readonly string[], io: GatewayIo): Promise<number | undefined> {
  if (argv[0] !== 'start') { io.stdout(gatewayHelp); return 0; }
  try {
    let values: Map<string, unknown>;
    try {
      values = parseFlags(argv.slice(1), startFlags).values;
    } catch (e) {
      if (!(e instanceof CtlExit)) throw e;
      // cobra prints the error and usage; etcdmain then prints the error again, unterminated.
      throw new GatewayExit(1, '', `Error: ${e.text}\n${startUsage}\n${e.text}`);
    }
    if (values.get('help') === true) { io.stdout(`start the gateway\n\n${startUsage}`); return 0; }
    const { endpoints, listenHost, listenPort } = await checkedEndpoints(values);
    // etcd's gateway logs with zap.NewProduction: epoch-seconds "ts", durations in seconds.
    const log = createLogger({ level: 'info', timeEncoding: 'epoch' });
    const proxy = new TcpProxy({ endpoints, retryDelayMs: values.get('retry-delay') as number, log });
    try {
      await proxy.listen(listenHost, listenPort);
    } catch (e) {
      throw new GatewayExit(1, '', listenError(values.get('listen-addr') as string, e as NodeJS.ErrnoException) + '\n');
    }
    return undefined;
  } catch (e) {
    if (!(e instanceof GatewayExit)) throw e;
    if (e.stdout) io.stdout(e.stdout);
    if (e.stderr) io.stderr(e.stderr);
    return e.code;
  }
}
