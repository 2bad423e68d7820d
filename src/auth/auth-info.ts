/**
 * Who a request is from: the user and the auth revision its token was checked at (0: nobody).
 * Its own module because the store and every token provider speak it: the store holds a
 * provider, and the providers' factory must not reach back into the store.
 */
export interface AuthInfo {
  readonly username: string;
  readonly revision: number;
}
