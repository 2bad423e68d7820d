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
