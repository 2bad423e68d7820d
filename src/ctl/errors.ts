// How etcdctl words a failure: etcd's errors by their message alone (clientv3 turns them into
// rpctypes errors), any other gRPC status as grpc-go's "rpc error: code = X desc = Y".
import { EtcdError, GrpcStatusError } from '../client/index.js';
import { CtlExit } from './exit.js';

const codeNames = ['OK', 'Canceled', 'Unknown', 'InvalidArgument', 'DeadlineExceeded', 'NotFound', 'AlreadyExists',
  'PermissionDenied', 'ResourceExhausted', 'FailedPrecondition', 'Aborted', 'OutOfRange', 'Unimplemented', 'Internal',
  'Unavailable', 'DataLoss', 'Unauthenticated'];

export function grpcCodeName(code: number): string {
  return codeNames[code] ?? `Code(${code})`;
}

export function describeError(e: unknown): string {
  if (e instanceof EtcdError) return e.message;
  if (e instanceof GrpcStatusError) return `rpc error: code = ${grpcCodeName(e.code)} desc = ${e.details}`;
  if (e instanceof CtlExit) return e.text ?? '';
  return e instanceof Error ? e.message : String(e);
}

/** Go's syscall.Errno texts for the file errors a command meets. */
const errnoTexts: Record<string, string> = {
  ENOENT: 'no such file or directory', EACCES: 'permission denied', EISDIR: 'is a directory',
  ENOTDIR: 'not a directory', EEXIST: 'file exists', ENOSPC: 'no space left on device',
};

/**
 * A failed file operation as Go's *os.PathError words it ("stat f: no such file or
 * directory"); `op` is the call etcdctl makes first (it may differ from node's syscall).
 */
export function describeFileError(e: unknown, op: string): string {
  const err = e as NodeJS.ErrnoException;
  const text = err?.code !== undefined ? errnoTexts[err.code] : undefined;
  return text !== undefined && err.path !== undefined ? `${op} ${err.path}: ${text}` : describeError(e);
}
