/**
 * The call metadata the server acts on, read from a call's headers. Its own module so the
 * transport worker (worker.ts) reads it without loading the services.
 */

/** Request headers as node:http2 gives them (a repeated key is an array). */
type MetadataHeaders = Readonly<Record<string, string | string[] | undefined>>;

const first = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

/**
 * The auth token a call carries. etcd's AuthInfoFromCtx reads the `token` metadata, else
 * `authorization` (what the JSON gateway makes of the HTTP Authorization header).
 */
export function tokenOf(headers: { token?: string | string[] | undefined; authorization?: string | string[] | undefined }): string | undefined {
  return first(headers.token ?? headers.authorization);
}

/**
 * etcd's `hasleader` metadata (clientv3.WithRequireLeader, rpctypes.MetadataRequireLeaderKey):
 * the caller wants "etcdserver: no leader" at once from a member that knows no leader,
 * rather than a wait for one. etcd compares the first value with "true" exactly.
 */
export function requiresLeader(headers: MetadataHeaders): boolean {
  return first(headers.hasleader) === 'true';
}
