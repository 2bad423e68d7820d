/**
 * Histories and models for the linearizability checker (checker.ts).
 *
 * A history is what clients observed: each operation's input, its output, and when the client
 * called it and saw it return (any clock that is monotonic across clients: one process's
 * performance.now() is). An operation whose outcome the client never learned (a timeout, a
 * cut connection) has output UNKNOWN: it may or may not have taken effect, at any moment after
 * its call, even after the client gave up.
 */

/** The output of an operation whose outcome is unknown (timed out, connection lost). */
export const UNKNOWN: unique symbol = Symbol('unknown outcome');
export type Unknown = typeof UNKNOWN;

export interface Operation<I, O> {
  /** Which client issued it (a client runs one operation at a time). */
  client: number;
  input: I;
  output: O | Unknown;
  /** When the client issued it. */
  call: number;
  /** When the client saw the answer (or gave up, for UNKNOWN; the checker then uses +Infinity). */
  return: number;
}

/**
 * A sequential specification. `step` answers whether `input` applied to `state` can produce
 * `output` (UNKNOWN: any output) and returns the state after it, or undefined if it cannot.
 * It must not mutate `state`: the search backtracks to old states.
 */
export interface Model<S, I, O> {
  init(): S;
  step(state: S, input: I, output: O | Unknown): S | undefined;
  /** A string equal for equal states (the search memoises on it). */
  stateKey(state: S): string;
  /** Operations on different partitions never interact (per-key models): checked separately. */
  partition?(input: I): string;
  /** True for operations that never change the state: with an UNKNOWN output they are dropped. */
  readOnly?(input: I): boolean;
  describe?(input: I, output: O | Unknown): string;
  /**
   * An equivalent, smaller history of one partition (same verdict), e.g. without writes of
   * unknown outcome that nothing observed: each such write multiplies the orders to try.
   */
  simplify?(ops: Operation<I, O>[]): Operation<I, O>[];
}
