// etcdctl's output formats for each kind of result: simple (the default), json, fields,
// table (member list and endpoint results only) and protobuf (the response's bytes).
// Unsupported combinations end the command as etcdctl does ("<format> not supported as
// output format", exit 4).
import { etcdserverpb as pb, authpb, prefixEnd, type KeyValue, type Event } from '../client/index.js';
import { CtlExit, ExitCode } from './exit.js';
import { goJson, goStruct, goQuote, hexBytes, humanizeBytes, renderTable } from './format.js';

export type OutputFormat = 'simple' | 'json' | 'fields' | 'table' | 'protobuf';
export const outputFormats: readonly string[] = ['simple', 'json', 'fields', 'table', 'protobuf'];

export interface EpHealth { ep: string; health: boolean; took: string; error: string }
export interface EpStatus { ep: string; resp: pb.StatusResponse }
export interface EpHashKV { ep: string; resp: pb.HashKVResponse }

type Out = (s: string | Uint8Array) => void;

/** ANSI SGR: keys bold blue, values green. */
const KEY_COLOR = '\x1b[1;34m';
const VALUE_COLOR = '\x1b[32m';
const COLOR_OFF = '\x1b[0m';

const hex16 = (id: bigint) => id.toString(16).padStart(16, '0');
/** Go's %16x: space-padded hex. */
const hexSpace16 = (id: bigint) => id.toString(16).padStart(16, ' ');

export class Printer {
  valueOnly = false;
  /** `color`: keys and values of the simple format in color (concordctl's own, for a terminal). */
  constructor(readonly format: OutputFormat, readonly isHex: boolean, private readonly out: Out, private readonly err: Out,
    private readonly color = false) {}

  private unsupported(): never {
    throw new CtlExit(ExitCode.BadFeature, `${this.format} not supported as output format`);
  }

  /** json/protobuf of a message; false when the format is another one. */
  private rpc<T>(fns: pb.MessageFns<T>, m: T): boolean {
    if (this.format === 'json') { this.out(`${goJson(m)}\n`); return true; }
    if (this.format === 'protobuf') { this.out(fns.encode(m).finish()); return true; }
    if (this.format === 'table') this.unsupported();
    return false;
  }

  private line(s: string): void { this.out(`${s}\n`); }

  private kv(kv: KeyValue): void {
    const k = this.isHex ? hexBytes(kv.key) : kv.key.toString('latin1');
    const v = this.isHex ? hexBytes(kv.value) : kv.value.toString('latin1');
    const [keyOn, valueOn, off] = this.color ? [KEY_COLOR, VALUE_COLOR, COLOR_OFF] : ['', '', ''];
    if (!this.valueOnly) this.out(Buffer.from(`${keyOn}${k}${off}\n`, 'latin1'));
    this.out(Buffer.from(`${valueOn}${v}${off}\n`, 'latin1'));
  }

  private fieldsHdr(h: pb.ResponseHeader | undefined): void {
    this.line(`"ClusterID" : ${h?.clusterId ?? 0n}`);
    this.line(`"MemberID" : ${h?.memberId ?? 0n}`);
    this.line(`"Revision" : ${h?.revision ?? 0}`);
    this.line(`"RaftTerm" : ${h?.raftTerm ?? 0}`);
  }

  private fieldsKv(pfx: string, kv: KeyValue): void {
    this.line(`"${pfx}Key" : ${goQuote(kv.key)}`);
    this.line(`"${pfx}CreateRevision" : ${kv.createRevision}`);
    this.line(`"${pfx}ModRevision" : ${kv.modRevision}`);
    this.line(`"${pfx}Version" : ${kv.version}`);
    this.line(`"${pfx}Value" : ${goQuote(kv.value)}`);
    this.line(`"${pfx}Lease" : ${kv.lease}`);
  }

  get(r: pb.RangeResponse): void {
    if (this.rpc(pb.RangeResponse, r)) return;
    if (this.format === 'fields') {
      this.fieldsHdr(r.header);
      for (const kv of r.kvs) this.fieldsKv('', kv);
      this.line(`"More" : ${r.more}`);
      this.line(`"Count" : ${r.count}`);
      return;
    }
    for (const kv of r.kvs) this.kv(kv);
  }

  put(r: pb.PutResponse): void {
    if (this.rpc(pb.PutResponse, r)) return;
    if (this.format === 'fields') {
      this.fieldsHdr(r.header);
      if (r.prevKv) this.fieldsKv('Prev', r.prevKv);
      return;
    }
    this.line('OK');
    if (r.prevKv) this.kv(r.prevKv);
  }

  del(r: pb.DeleteRangeResponse): void {
    if (this.rpc(pb.DeleteRangeResponse, r)) return;
    if (this.format === 'fields') {
      this.fieldsHdr(r.header);
      this.line(`"Deleted" : ${r.deleted}`);
      for (const kv of r.prevKvs) this.fieldsKv('Prev', kv);
      return;
    }
    this.line(String(r.deleted));
    for (const kv of r.prevKvs) this.kv(kv);
  }

  txn(r: pb.TxnResponse): void {
    if (this.rpc(pb.TxnResponse, r)) return;
    const fields = this.format === 'fields';
    if (fields) { this.fieldsHdr(r.header); this.line(`"Succeeded" : ${r.succeeded}`); }
    else this.line(r.succeeded ? 'SUCCESS' : 'FAILURE');
    for (const op of r.responses) {
      if (!fields) this.line('');
      if (op.responseDeleteRange) this.del(op.responseDeleteRange);
      else if (op.responsePut) this.put(op.responsePut);
      else if (op.responseRange) this.get(op.responseRange);
    }
  }

  watch(header: pb.ResponseHeader, events: Event[]): void {
    if (this.format === 'json') {
      this.line(goStruct([['Header', header], ['Events', events], ['CompactRevision', 0], ['Canceled', false], ['Created', false]]));
      return;
    }
    if (this.format === 'protobuf') {
      this.out(pb.WatchResponse.encode({ header, watchId: 0, created: false, canceled: false, compactRevision: 0, cancelReason: '', fragment: false, events }).finish());
      return;
    }
    if (this.format === 'table') this.unsupported();
    if (this.format === 'fields') this.fieldsHdr(header);
    for (const e of events) {
      const type = e.type === 1 ? 'DELETE' : 'PUT';
      if (this.format === 'fields') {
        this.line(`"Type" : ${type}`);
        if (e.prevKv) this.fieldsKv('Prev', e.prevKv);
        this.fieldsKv('', e.kv!);
      } else {
        this.line(type);
        if (e.prevKv) this.kv(e.prevKv);
        this.kv(e.kv!);
      }
    }
  }

  /** v3.LeaseGrantResponse and friends embed *pb.ResponseHeader: its fields come first, flattened. */
  private leaseJson(h: pb.ResponseHeader | undefined, fields: ReadonlyArray<[string, unknown]>): void {
    const head = h ? goJson(h, 'header').slice(1, -1) : '';
    const rest = goStruct(fields).slice(1, -1);
    this.line(`{${[head, rest].filter((s) => s !== '').join(',')}}`);
  }

  grant(r: pb.LeaseGrantResponse): void {
    if (this.format === 'json') { this.leaseJson(r.header, [['ID', r.ID], ['TTL', r.TTL], ['Error', r.error]]); return; }
    if (this.format === 'protobuf' || this.format === 'table') this.unsupported();
    if (this.format === 'fields') { this.fieldsHdr(r.header); this.line(`"ID" : ${r.ID}`); this.line(`"TTL" : ${r.TTL}`); return; }
    this.line(`lease ${hex16(r.ID)} granted with TTL(${r.TTL}s)`);
  }

  revoke(id: bigint, r: pb.LeaseRevokeResponse): void {
    if (this.format === 'json') { this.line(goStruct([['header', r.header]])); return; }
    if (this.format === 'protobuf' || this.format === 'table') this.unsupported();
    if (this.format === 'fields') { this.fieldsHdr(r.header); return; }
    this.line(`lease ${hex16(id)} revoked`);
  }

  keepAlive(r: pb.LeaseKeepAliveResponse): void {
    if (this.format === 'json') { this.leaseJson(r.header, [['ID', r.ID], ['TTL', r.TTL]]); return; }
    if (this.format === 'protobuf' || this.format === 'table') this.unsupported();
    if (this.format === 'fields') { this.fieldsHdr(r.header); this.line(`"ID" : ${r.ID}`); this.line(`"TTL" : ${r.TTL}`); return; }
    this.line(`lease ${hex16(r.ID)} keepalived with TTL(${r.TTL})`);
  }

  timeToLive(r: pb.LeaseTimeToLiveResponse, keys: boolean): void {
    if (this.format === 'json') {
      this.leaseJson(r.header, [['ID', r.ID], ['TTL', r.TTL], ['GrantedTTL', r.grantedTTL], ['Keys', r.keys.length === 0 ? null : r.keys]]);
      return;
    }
    if (this.format === 'protobuf' || this.format === 'table') this.unsupported();
    if (this.format === 'fields') {
      this.fieldsHdr(r.header);
      this.line(`"ID" : ${r.ID}`); this.line(`"TTL" : ${r.TTL}`); this.line(`"GrantedTTL" : ${r.grantedTTL}`);
      for (const k of r.keys) this.line(`"Key" : ${goQuote(k)}`);
      return;
    }
    if (r.grantedTTL === 0 && r.TTL === -1) { this.line(`lease ${hex16(r.ID)} already expired`); return; }
    let txt = `lease ${hex16(r.ID)} granted with TTL(${r.grantedTTL}s), remaining(${r.TTL}s)`;
    if (keys) txt += `, attached keys([${r.keys.map((k) => k.toString('latin1')).join(' ')}])`;
    this.line(txt);
  }

  leases(r: pb.LeaseLeasesResponse): void {
    if (this.format === 'json') { this.leaseJson(r.header, [['leases', r.leases.length === 0 ? null : r.leases.map((l) => ({ ID: l.ID }))]]); return; }
    if (this.format === 'protobuf' || this.format === 'table') this.unsupported();
    if (this.format === 'fields') { this.fieldsHdr(r.header); for (const l of r.leases) this.line(`"ID" : ${l.ID}`); return; }
    this.line(`found ${r.leases.length} leases`);
    for (const l of r.leases) this.line(hex16(l.ID));
  }

  private memberRows(r: { members: pb.Member[] }): string[][] {
    return r.members.map((m) => [m.ID.toString(16), m.name === '' ? 'unstarted' : 'started', m.name,
      m.peerURLs.join(','), m.clientURLs.join(','), String(m.isLearner)]);
  }

  memberList(r: pb.MemberListResponse): void {
    if (this.rpc2(pb.MemberListResponse, r)) return;
    if (this.format === 'table') {
      this.out(renderTable(['ID', 'Status', 'Name', 'Peer Addrs', 'Client Addrs', 'Is Learner'], this.memberRows(r)));
      return;
    }
    if (this.format === 'fields') {
      this.fieldsHdr(r.header);
      for (const m of r.members) {
        this.line(`"ID" : ${m.ID}`);
        this.line(`"Name" : ${goQuote(m.name)}`);
        for (const u of m.peerURLs) this.line(`"PeerURL" : ${goQuote(u)}`);
        for (const u of m.clientURLs) this.line(`"ClientURL" : ${goQuote(u)}`);
        this.line(`"IsLearner" : ${m.isLearner}`);
        this.line('');
      }
      return;
    }
    for (const row of this.memberRows(r)) this.line(row.join(', '));
  }

  /** json/protobuf for results that etcdctl's table printer also renders. */
  private rpc2<T>(fns: pb.MessageFns<T>, m: T): boolean {
    if (this.format === 'json') { this.line(goJson(m)); return true; }
    if (this.format === 'protobuf') { this.out(fns.encode(m).finish()); return true; }
    return false;
  }

  memberChange(verb: 'added to' | 'removed from' | 'updated in' | 'promoted in', id: bigint, header: pb.ResponseHeader | undefined, m: unknown, fns: pb.MessageFns<unknown>): void {
    if (this.rpc(fns, m)) return;
    if (this.format === 'fields') { this.fieldsHdr(header); return; }
    this.line(`Member ${hexSpace16(id)} ${verb} cluster ${hexSpace16(header?.clusterId ?? 0n)}`);
  }

  endpointHealth(hs: EpHealth[]): void {
    if (this.format === 'json') {
      this.line(`[${hs.map((h) => goStruct([['endpoint', h.ep], ['health', h.health], ['took', h.took], ['error', h.error]], new Set(['error']))).join(',')}]`);
      return;
    }
    if (this.format === 'table') { this.out(renderTable(['endpoint', 'health', 'took', 'error'], hs.map((h) => [h.ep, String(h.health), h.took, h.error]))); return; }
    if (this.format === 'protobuf') this.unsupported();
    if (this.format === 'fields') {
      for (const h of hs) { this.line(`"Endpoint" : ${goQuote(h.ep)}`); this.line(`"Health" : ${h.health}`); this.line(`"Took" : ${h.took}`); this.line(`"Error" : ${h.error}`); this.line(''); }
      return;
    }
    for (const h of hs) {
      this.err(h.error === '' ? `${h.ep} is healthy: successfully committed proposal: took = ${h.took}\n` : `${h.ep} is unhealthy: failed to commit proposal: ${h.error}\n`);
    }
  }

  private statusRows(list: EpStatus[]): string[][] {
    return list.map(({ ep, resp: s }) => [ep, (s.header?.memberId ?? 0n).toString(16), s.version, humanizeBytes(s.dbSize),
      String(s.leader === s.header?.memberId), String(s.isLearner), String(s.raftTerm), String(s.raftIndex), String(s.raftAppliedIndex), s.errors.join(', ')]);
  }

  endpointStatus(list: EpStatus[]): void {
    if (this.format === 'json') { this.line(`[${list.map((s) => goStruct([['Endpoint', s.ep], ['Status', s.resp]])).join(',')}]`); return; }
    if (this.format === 'table') {
      this.out(renderTable(['endpoint', 'ID', 'version', 'db size', 'is leader', 'is learner', 'raft term', 'raft index', 'raft applied index', 'errors'], this.statusRows(list)));
      return;
    }
    if (this.format === 'protobuf') this.unsupported();
    if (this.format === 'fields') {
      for (const { ep, resp: s } of list) {
        this.fieldsHdr(s.header);
        this.line(`"Version" : ${goQuote(s.version)}`);
        this.line(`"DBSize" : ${s.dbSize}`);
        this.line(`"Leader" : ${s.leader}`);
        this.line(`"IsLearner" : ${s.isLearner}`);
        this.line(`"RaftIndex" : ${s.raftIndex}`);
        this.line(`"RaftTerm" : ${s.raftTerm}`);
        this.line(`"RaftAppliedIndex" : ${s.raftAppliedIndex}`);
        this.line(`"Errors" : [${s.errors.join(' ')}]`);
        this.line(`"Endpoint" : ${goQuote(ep)}`);
        this.line('');
      }
      return;
    }
    for (const row of this.statusRows(list)) this.line(row.join(', '));
  }

  endpointHashKV(list: EpHashKV[]): void {
    if (this.format === 'json') { this.line(`[${list.map((h) => goStruct([['Endpoint', h.ep], ['HashKV', h.resp]])).join(',')}]`); return; }
    if (this.format === 'table') { this.out(renderTable(['endpoint', 'hash'], list.map((h) => [h.ep, String(h.resp.hash)]))); return; }
    if (this.format === 'protobuf') this.unsupported();
    if (this.format === 'fields') {
      for (const h of list) { this.fieldsHdr(h.resp.header); this.line(`"Endpoint" : ${goQuote(h.ep)}`); this.line(`"Hash" : ${h.resp.hash}`); this.line(''); }
      return;
    }
    for (const h of list) this.line(`${h.ep}, ${h.resp.hash}`);
  }

  /** snapshot status: etcd's makeDBStatusTable row, or snapshot.Status as JSON / fields. */
  dbStatus(st: { hash: number; revision: number; totalKey: number; totalSize: number }): void {
    if (this.format === 'json') { this.line(JSON.stringify({ hash: st.hash, revision: st.revision, totalKey: st.totalKey, totalSize: st.totalSize })); return; }
    if (this.format === 'protobuf') this.unsupported();
    if (this.format === 'fields') {
      this.line(`"Hash" : ${st.hash}`);
      this.line(`"Revision" : ${st.revision}`);
      this.line(`"Keys" : ${st.totalKey}`);
      this.line(`"Size" : ${st.totalSize}`);
      return;
    }
    const row = [st.hash.toString(16), String(st.revision), String(st.totalKey), humanizeBytes(st.totalSize)];
    if (this.format === 'table') { this.out(renderTable(['hash', 'revision', 'total keys', 'total size'], [row])); return; }
    this.line(row.join(', '));
  }

  alarm(r: pb.AlarmResponse): void {
    if (this.rpc(pb.AlarmResponse, r)) return;
    if (this.format === 'fields') {
      this.fieldsHdr(r.header);
      for (const a of r.alarms) { this.line(`"MemberID" : ${a.memberID}`); this.line(`"AlarmType" : ${pb.alarmTypeToJSON(a.alarm)}`); this.line(''); }
      return;
    }
    for (const a of r.alarms) this.line(`memberID:${a.memberID} alarm:${pb.alarmTypeToJSON(a.alarm)} `);
  }

  // user, role: etcdctl prints these through its printerRPC (json, protobuf), its simple
  // printer, and a fields printer that knows some of them; table knows none.

  /** json/protobuf of an auth response; the header alone for fields, when `fieldsHeader`. */
  private authRpc<T extends { header?: pb.ResponseHeader }>(fns: pb.MessageFns<T>, m: T, fieldsHeader: boolean): boolean {
    if (this.rpc(fns, m)) return true;
    if (this.format === 'fields') {
      if (!fieldsHeader) this.unsupported();
      this.fieldsHdr(m.header);
      return true;
    }
    return false;
  }

  /** One line, its names as raw bytes (Go prints strings byte for byte). */
  private raw(s: string | Buffer): void {
    this.out(Buffer.concat([typeof s === 'string' ? Buffer.from(s, 'latin1') : s, Buffer.from('\n')]));
  }

  userAdd(name: string, r: pb.AuthUserAddResponse): void {
    if (!this.authRpc(pb.AuthUserAddResponse, r, true)) this.raw(`User ${name} created`);
  }

  userGet(name: string, r: pb.AuthUserGetResponse): void {
    if (!this.authRpc(pb.AuthUserGetResponse, r, false)) this.raw(`User: ${name}\nRoles:${r.roles.map((x) => ` ${x}`).join('')}`);
  }

  userList(r: pb.AuthUserListResponse): void {
    if (!this.authRpc(pb.AuthUserListResponse, r, false)) for (const u of r.users) this.raw(u);
  }

  userChangePassword(r: pb.AuthUserChangePasswordResponse): void {
    if (!this.authRpc(pb.AuthUserChangePasswordResponse, r, true)) this.line('Password updated');
  }

  userGrantRole(user: string, role: string, r: pb.AuthUserGrantRoleResponse): void {
    if (!this.authRpc(pb.AuthUserGrantRoleResponse, r, true)) this.raw(`Role ${role} is granted to user ${user}`);
  }

  userRevokeRole(user: string, role: string, r: pb.AuthUserRevokeRoleResponse): void {
    if (!this.authRpc(pb.AuthUserRevokeRoleResponse, r, true)) this.raw(`Role ${role} is revoked from user ${user}`);
  }

  userDelete(name: string, r: pb.AuthUserDeleteResponse): void {
    if (!this.authRpc(pb.AuthUserDeleteResponse, r, true)) this.raw(`User ${name} deleted`);
  }

  roleAdd(role: string, r: pb.AuthRoleAddResponse): void {
    if (!this.authRpc(pb.AuthRoleAddResponse, r, true)) this.raw(`Role ${role} created`);
  }

  roleDelete(role: string, r: pb.AuthRoleDeleteResponse): void {
    if (!this.authRpc(pb.AuthRoleDeleteResponse, r, true)) this.raw(`Role ${role} deleted`);
  }

  roleList(r: pb.AuthRoleListResponse): void {
    if (this.rpc(pb.AuthRoleListResponse, r)) return;
    if (this.format === 'fields') {
      this.fieldsHdr(r.header);
      this.line(`"Roles" :${r.roles.map((x) => ` ${goQuote(x)}`).join('')}`);
      return;
    }
    for (const x of r.roles) this.raw(x);
  }

  roleGrantPermission(role: string, r: pb.AuthRoleGrantPermissionResponse): void {
    if (!this.authRpc(pb.AuthRoleGrantPermissionResponse, r, true)) this.raw(`Role ${role} updated`);
  }

  roleRevokePermission(role: string, key: Buffer, end: Buffer, r: pb.AuthRoleRevokePermissionResponse): void {
    if (this.authRpc(pb.AuthRoleRevokePermissionResponse, r, true)) return;
    const bytes = (...parts: Array<string | Buffer>) => Buffer.concat(parts.map((x) => (typeof x === 'string' ? Buffer.from(x, 'latin1') : x)));
    if (end.length === 0) this.raw(bytes('Permission of key ', key, ` is revoked from role ${role}`));
    else if (!isOpenEnd(end)) this.raw(bytes('Permission of range [', key, ', ', end, `) is revoked from role ${role}`));
    else this.raw(bytes('Permission of range [', key, `, <open ended> is revoked from role ${role}`));
  }

  roleGet(role: string, r: pb.AuthRoleGetResponse): void {
    if (this.rpc(pb.AuthRoleGetResponse, r)) return;
    if (this.format === 'fields') {
      this.fieldsHdr(r.header);
      for (const p of r.perm) {
        // Go's fmt.Println puts a space between its operands, after the label's own.
        this.line(`"PermType" :  ${authpb.permission_TypeToJSON(p.permType)}`);
        this.line(`"Key" : ${goQuote(p.key)}`);
        this.line(`"RangeEnd" : ${goQuote(p.rangeEnd)}`);
      }
      return;
    }
    const lines: Buffer[] = [Buffer.from(`Role ${role}\nKV Read:\n`, 'latin1')];
    const section = (types: number[]) => {
      for (const p of r.perm) if (types.includes(p.permType)) lines.push(permissionLine(p));
    };
    section([0, 2]);
    lines.push(Buffer.from('KV Write:\n'));
    section([1, 2]);
    this.out(Buffer.concat(lines));
  }
}

/** etcd's "\0" range end: every key from the start key on. */
const isOpenEnd = (end: Buffer) => end.length === 1 && end[0] === 0;

/** A permission as etcdctl's role get lists it: a key, or a range with its prefix noted. */
function permissionLine(p: authpb.Permission): Buffer {
  const parts: Array<string | Buffer> = ['\t'];
  if (p.rangeEnd.length === 0) parts.push(p.key);
  else {
    parts.push('[', p.key, ', ');
    parts.push(...(isOpenEnd(p.rangeEnd) ? ['<open ended>'] : [p.rangeEnd, ')']));
    if (prefixEnd(p.key).equals(p.rangeEnd)) parts.push(' (prefix ', p.key, ')');
  }
  parts.push('\n');
  return Buffer.concat(parts.map((x) => (typeof x === 'string' ? Buffer.from(x, 'latin1') : x)));
}
