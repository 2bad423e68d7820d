/**
 * Go's `sort.Sort` (Go 1.19, the toolchain Debian's etcd 3.4.23 is built with), reproduced
 * so that ranges sorted by a target with ties (several keys at one mod revision, equal
 * versions or values) come back in exactly etcd's order. `sort.Sort` is not stable, so a
 * stable JS sort would differ from etcd as soon as a result has more than 12 entries.
 *
 * The algorithm is pattern-defeating quicksort (insertion sort up to 12 elements, heapsort
 * after too many bad pivots, Tukey's ninther for long runs, a fixed xorshift to break
 * patterns). Every comparison and swap happens where Go's does; that is the whole point.
 */

type Less = (i: number, j: number) => boolean;

const enum Hint { Unknown, Increasing, Decreasing }

/** Sorts `data` in place as Go's sort.Sort would with `less(a, b)` as Less. */
export function goSort<T>(data: T[], less: (a: T, b: T) => boolean): void {
  const n = data.length;
  if (n <= 1) return;
  const s: Sorter = {
    less: (i, j) => less(data[i]!, data[j]!),
    swap: (i, j) => { const t = data[i]!; data[i] = data[j]!; data[j] = t; },
  };
  pdqsort(s, 0, n, bitLength(n));
}

interface Sorter {
  less: Less;
  swap(i: number, j: number): void;
}

/** Go's bits.Len: the number of bits needed to represent n. */
function bitLength(n: number): number {
  return n === 0 ? 0 : 32 - Math.clz32(n);
}

function insertionSort(s: Sorter, a: number, b: number): void {
  for (let i = a + 1; i < b; i++) {
    for (let j = i; j > a && s.less(j, j - 1); j--) s.swap(j, j - 1);
  }
}

function siftDown(s: Sorter, lo: number, hi: number, first: number): void {
  let root = lo;
  for (;;) {
    let child = 2 * root + 1;
    if (child >= hi) return;
    if (child + 1 < hi && s.less(first + child, first + child + 1)) child++;
    if (!s.less(first + root, first + child)) return;
    s.swap(first + root, first + child);
    root = child;
  }
}

function heapSort(s: Sorter, a: number, b: number): void {
  const first = a;
  const hi = b - a;
  for (let i = Math.floor((hi - 1) / 2); i >= 0; i--) siftDown(s, i, hi, first);
  for (let i = hi - 1; i >= 0; i--) {
    s.swap(first, first + i);
    siftDown(s, 0, i, first);
  }
}

function pdqsort(s: Sorter, a: number, b: number, limit: number): void {
  const maxInsertion = 12;
  let wasBalanced = true;
  let wasPartitioned = true;
  for (;;) {
    const length = b - a;
    if (length <= maxInsertion) {
      insertionSort(s, a, b);
      return;
    }
    if (limit === 0) {
      heapSort(s, a, b);
      return;
    }
    if (!wasBalanced) {
      breakPatterns(s, a, b);
      limit--;
    }
    let [pivot, hint] = choosePivot(s, a, b);
    if (hint === Hint.Decreasing) {
      reverseRange(s, a, b);
      pivot = b - 1 - (pivot - a);
      hint = Hint.Increasing;
    }
    if (wasBalanced && wasPartitioned && hint === Hint.Increasing && partialInsertionSort(s, a, b)) return;
    // Many equal elements: put those equal to the pivot first and skip them.
    if (a > 0 && !s.less(a - 1, pivot)) {
      a = partitionEqual(s, a, b, pivot);
      continue;
    }
    const [mid, alreadyPartitioned] = partition(s, a, b, pivot);
    wasPartitioned = alreadyPartitioned;
    const leftLen = mid - a;
    const rightLen = b - mid;
    const balanceThreshold = Math.floor(length / 8);
    if (leftLen < rightLen) {
      wasBalanced = leftLen >= balanceThreshold;
      pdqsort(s, a, mid, limit);
      a = mid + 1;
    } else {
      wasBalanced = rightLen >= balanceThreshold;
      pdqsort(s, mid + 1, b, limit);
      b = mid;
    }
  }
}

function partition(s: Sorter, a: number, b: number, pivot: number): [number, boolean] {
  s.swap(a, pivot);
  let i = a + 1;
  let j = b - 1;
  while (i <= j && s.less(i, a)) i++;
  while (i <= j && !s.less(j, a)) j--;
  if (i > j) {
    s.swap(j, a);
    return [j, true];
  }
  s.swap(i, j);
  i++;
  j--;
  for (;;) {
    while (i <= j && s.less(i, a)) i++;
    while (i <= j && !s.less(j, a)) j--;
    if (i > j) break;
    s.swap(i, j);
    i++;
    j--;
  }
  s.swap(j, a);
  return [j, false];
}

function partitionEqual(s: Sorter, a: number, b: number, pivot: number): number {
  s.swap(a, pivot);
  let i = a + 1;
  let j = b - 1;
  for (;;) {
    while (i <= j && !s.less(a, i)) i++;
    while (i <= j && s.less(a, j)) j--;
    if (i > j) break;
    s.swap(i, j);
    i++;
    j--;
  }
  return i;
}

function partialInsertionSort(s: Sorter, a: number, b: number): boolean {
  const maxSteps = 5;
  const shortestShifting = 50;
  let i = a + 1;
  for (let step = 0; step < maxSteps; step++) {
    while (i < b && !s.less(i, i - 1)) i++;
    if (i === b) return true;
    if (b - a < shortestShifting) return false;
    s.swap(i, i - 1);
    if (i - a >= 2) {
      for (let j = i - 1; j >= 1; j--) {
        if (!s.less(j, j - 1)) break;
        s.swap(j, j - 1);
      }
    }
    if (b - i >= 2) {
      for (let j = i + 1; j < b; j++) {
        if (!s.less(j, j - 1)) break;
        s.swap(j, j - 1);
      }
    }
  }
  return false;
}

/** Go 1.19's xorshift (shifts 13, 17, 5 on a uint64), seeded with the run's length. */
function breakPatterns(s: Sorter, a: number, b: number): void {
  const length = b - a;
  if (length < 8) return;
  let r = BigInt(length);
  const mask64 = (1n << 64n) - 1n;
  const next = (): bigint => {
    r ^= (r << 13n) & mask64;
    r ^= r >> 17n;
    r ^= (r << 5n) & mask64;
    return r;
  };
  const modulus = 2 ** bitLength(length);
  const start = a + Math.floor(length / 4) * 2 - 1;
  for (let idx = start; idx <= start + 2; idx++) {
    let other = Number(next() & BigInt(modulus - 1));
    if (other >= length) other -= length;
    s.swap(idx, a + other);
  }
}

function choosePivot(s: Sorter, a: number, b: number): [number, Hint] {
  const shortestNinther = 50;
  const maxSwaps = 4 * 3;
  const l = b - a;
  const swaps = { n: 0 };
  let i = a + Math.floor(l / 4) * 1;
  let j = a + Math.floor(l / 4) * 2;
  let k = a + Math.floor(l / 4) * 3;
  if (l >= 8) {
    if (l >= shortestNinther) {
      i = median(s, i - 1, i, i + 1, swaps);
      j = median(s, j - 1, j, j + 1, swaps);
      k = median(s, k - 1, k, k + 1, swaps);
    }
    j = median(s, i, j, k, swaps);
  }
  if (swaps.n === 0) return [j, Hint.Increasing];
  if (swaps.n === maxSwaps) return [j, Hint.Decreasing];
  return [j, Hint.Unknown];
}

/** The index among a, b, c holding the median, counting the swaps an in-place sort would do. */
function median(s: Sorter, a: number, b: number, c: number, swaps: { n: number }): number {
  if (s.less(b, a)) { swaps.n++; [a, b] = [b, a]; }
  if (s.less(c, b)) { swaps.n++; [b, c] = [c, b]; }
  if (s.less(b, a)) { swaps.n++; [a, b] = [b, a]; }
  return b;
}

function reverseRange(s: Sorter, a: number, b: number): void {
  for (let i = a, j = b - 1; i < j; i++, j--) s.swap(i, j);
}
