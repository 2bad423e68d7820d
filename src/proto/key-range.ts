/**
 * Key-range conventions of etcd's API shared by server and clients: the range_end that
 * selects every key with a prefix (clientv3's GetPrefixRangeEnd; "\0" when there is none).
 */
export function prefixRangeEnd(prefix: Uint8Array): Buffer {
  for (let i = prefix.length - 1; i >= 0; i--) {
    if (prefix[i]! < 0xff) {
      const end = Buffer.from(prefix.subarray(0, i + 1));
      end[i]!++;
      return end;
    }
  }
  return Buffer.from([0]);
}
