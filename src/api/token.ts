/**
 * The auth token a call carries. etcd's AuthInfoFromCtx reads the `token` metadata, else
 * `authorization` (what the JSON gateway makes of the HTTP Authorization header). Its own
 * module so the transport worker (worker.ts) reads it without loading the services.
 */
export function tokenOf(headers: { token?: string | string[] | undefined; authorization?: string | string[] | undefined }): string | undefined {
  const t = headers.token ?? headers.authorization;
  return Array.isArray(t) ? t[0] : t;
}
