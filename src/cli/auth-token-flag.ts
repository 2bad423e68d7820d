/**
 * `--auth-token` as etcd parses it at start-up (auth/store.go decomposeOpts and
 * NewTokenProvider, auth/options.go, auth/jwt.go newTokenProviderJWT): "simple", "" (no
 * tokens), or "jwt,sign-method=M,pub-key=PATH,priv-key=PATH,ttl=DURATION". A refusal carries
 * etcd's error text (what "failed to start etcd" prints) and the log lines etcd writes on the way.
 */
import { X509Certificate, createPrivateKey, createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import { jwtAlgs, type JwtAlg } from '../server/config.js';
import type { TokenProviderConfig } from '../server/index.js';
import type { LogRecord } from '../log/index.js';
import { parseGoDuration } from './go-flags.js';

const invalidAuthOpts = 'auth: invalid auth options';
const missingKey = 'auth: missing key data';
const keyMismatch = "auth: public and private keys don't match";
const notPem = 'invalid key: Key must be a PEM encoded PKCS1 or PKCS8 key';
/** etcd's DefaultTTL for JWTs. */
const defaultJwtTtlMs = 5 * 60 * 1000;
const knownJwtOptions = new Set(['sign-method', 'pub-key', 'priv-key', 'ttl']);

export class AuthTokenFlagError extends Error {
  constructor(message: string, readonly logs: LogRecord[]) {
    super(message);
  }
}

export interface AuthTokenFlag {
  config: TokenProviderConfig;
  /** Lines etcd logs for an accepted option (unknown JWT options). */
  logs: LogRecord[];
}

/** Parses `--auth-token`; `simpleTtlMs` is --auth-token-ttl. Throws AuthTokenFlagError. */
export function parseAuthTokenFlag(optstr: string, simpleTtlMs: number, readFile: (path: string) => Buffer): AuthTokenFlag {
  const logs: LogRecord[] = [];
  const fail = (message: string): never => {
    logs.push({ level: 'warn', msg: 'failed to create token provider', fields: { error: message } });
    throw new AuthTokenFlagError(message, logs);
  };
  const [type, ...pairs] = optstr.split(',');
  const opts = new Map<string, string>();
  for (const pair of pairs) {
    const kv = pair.split('=');
    if (kv.length !== 2) {
      logs.push({ level: 'warn', msg: 'invalid token option', fields: { option: optstr } });
      return fail(invalidAuthOpts);
    }
    if (opts.has(kv[0]!)) {
      logs.push({ level: 'warn', msg: 'invalid token option', fields: { option: optstr, 'duplicate-parameter': kv[0] } });
      return fail(invalidAuthOpts);
    }
    opts.set(kv[0]!, kv[1]!);
  }
  switch (type) {
    case 'simple':
      return { config: { kind: 'simple', ttlMs: simpleTtlMs }, logs };
    case '':
      return { config: { kind: 'nop' }, logs };
    case 'jwt':
      break;
    default:
      logs.push({ level: 'warn', msg: 'unknown token type', fields: { type, error: invalidAuthOpts } });
      return fail(invalidAuthOpts);
  }

  // jwtOptions.ParseWithDefaults: ttl, the key files, then the sign method.
  let ttlMs = defaultJwtTtlMs;
  let pub: Buffer | undefined;
  let priv: Buffer | undefined;
  let method: string;
  try {
    const ttl = opts.get('ttl') ?? '';
    if (ttl !== '') ttlMs = parseGoDuration(ttl);
    const pubFile = opts.get('pub-key') ?? '';
    if (pubFile !== '') pub = readKeyFile(pubFile, readFile);
    const privFile = opts.get('priv-key') ?? '';
    if (privFile !== '') priv = readKeyFile(privFile, readFile);
    method = opts.get('sign-method') ?? '';
    if (!registeredMethods.has(method)) throw new Error('auth: invalid auth signature method');
  } catch (e) {
    logs.push({ level: 'error', msg: 'problem loading JWT options', fields: { error: (e as Error).message } });
    return fail(invalidAuthOpts);
  }
  const unknown = [...opts.keys()].filter((k) => !knownJwtOptions.has(k));
  if (unknown.length > 0) logs.push({ level: 'warn', msg: 'unknown JWT options', fields: { keys: unknown } });
  if (!(jwtAlgs as readonly string[]).includes(method)) return fail(`unsupported signing method: ${registeredMethods.get(method)}`);
  const alg = method as JwtAlg;
  try {
    const keys = alg.startsWith('HS') ? hmacKey(priv) : asymmetricKeys(alg.startsWith('ES') ? 'ec' : 'rsa', priv, pub);
    return { config: { kind: 'jwt', jwt: { alg, ...keys, ttlMs } }, logs };
  } catch (e) {
    return fail((e as Error).message);
  }
}

/** golang-jwt's registered methods (GetSigningMethod), with the Go type etcd's Key() names for those it refuses. */
const registeredMethods = new Map<string, string>([
  ...jwtAlgs.map((a): [string, string] => [a, a]),
  ['none', '*jwt.signingMethodNone'],
  ['EdDSA', '*jwt.SigningMethodEd25519'],
]);

/** ioutil.ReadFile with Go's error text. */
function readKeyFile(path: string, readFile: (path: string) => Buffer): Buffer {
  try {
    return readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EISDIR') throw new Error(`read ${path}: is a directory`);
    const why = code === 'ENOENT' ? 'no such file or directory' : code === 'EACCES' ? 'permission denied' : (e as Error).message;
    throw new Error(`open ${path}: ${why}`);
  }
}

function hmacKey(priv: Buffer | undefined): { signKey: KeyObject; verifyKey: KeyObject } {
  if (priv === undefined || priv.length === 0) throw new Error(missingKey);
  const key = createSecretKey(priv); // the whole file's bytes, as etcd uses them
  return { signKey: key, verifyKey: key };
}

type KeyFamily = 'rsa' | 'ec';
const familyName: Record<KeyFamily, string> = { rsa: 'RSA', ec: 'ECDSA' };

/** etcd's rsaKey/ecKey: a private key signs (and its public half verifies); a public key alone only verifies. */
function asymmetricKeys(family: KeyFamily, privPem: Buffer | undefined, pubPem: Buffer | undefined): { signKey?: KeyObject; verifyKey: KeyObject } {
  const priv = privPem !== undefined && privPem.length > 0 ? parsePrivate(family, privPem) : undefined;
  const pub = pubPem !== undefined && pubPem.length > 0 ? parsePublic(family, pubPem) : undefined;
  if (priv === undefined) {
    if (pub === undefined) throw new Error(missingKey);
    return { verifyKey: pub };
  }
  const mine = createPublicKey(priv);
  if (pub !== undefined && keysDiffer(family, pub, mine)) throw new Error(keyMismatch);
  return { signKey: priv, verifyKey: mine };
}

/**
 * etcd's mismatch test, kept as written: RSA keys differ when both E and N differ; EC keys when
 * the curve and both coordinates differ (so a partly different key passes, as in etcd).
 */
function keysDiffer(family: KeyFamily, a: KeyObject, b: KeyObject): boolean {
  const ja = a.export({ format: 'jwk' });
  const jb = b.export({ format: 'jwk' });
  if (family === 'rsa') return ja.e !== jb.e && ja.n !== jb.n;
  return ja.crv !== jb.crv && ja.x !== jb.x && ja.y !== jb.y;
}

/** The first PEM block's DER bytes (Go's pem.Decode), or golang-jwt's not-PEM error. */
function pemDer(pem: Buffer): Buffer {
  const m = /-----BEGIN ([^-\r\n]+)-----\r?\n([\s\S]*?)-----END \1-----/.exec(pem.toString('latin1'));
  if (m === null) throw new Error(notPem);
  return Buffer.from(m[2]!.replace(/^[\w-]+:.*$/gm, '').replace(/\s+/g, ''), 'base64');
}

/** golang-jwt's ParseRSAPrivateKeyFromPEM (PKCS#1, then PKCS#8) / ParseECPrivateKeyFromPEM (SEC 1, then PKCS#8). */
function parsePrivate(family: KeyFamily, pem: Buffer): KeyObject {
  const der = pemDer(pem);
  const first = family === 'rsa' ? 'pkcs1' : 'sec1';
  const key = tryPrivate(der, first) ?? tryPrivate(der, 'pkcs8');
  if (key === undefined) {
    // x509.ParsePKCS8PrivateKey's hints when the DER is the other family's own format.
    if (family === 'rsa' && tryPrivate(der, 'sec1') !== undefined) throw new Error('x509: failed to parse private key (use ParseECPrivateKey instead for this key format)');
    if (family === 'ec' && tryPrivate(der, 'pkcs1') !== undefined) throw new Error('x509: failed to parse private key (use ParsePKCS1PrivateKey instead for this key format)');
    throw new Error('x509: failed to parse private key');
  }
  if (key.asymmetricKeyType !== family) throw new Error(`key is not a valid ${familyName[family]} private key`);
  return key;
}

function tryPrivate(der: Buffer, type: 'pkcs1' | 'sec1' | 'pkcs8'): KeyObject | undefined {
  try {
    return createPrivateKey({ key: der, format: 'der', type });
  } catch {
    return undefined;
  }
}

/** golang-jwt's Parse*PublicKeyFromPEM: PKIX, else a certificate's key. */
function parsePublic(family: KeyFamily, pem: Buffer): KeyObject {
  const der = pemDer(pem);
  let key: KeyObject;
  try {
    key = createPublicKey({ key: der, format: 'der', type: 'spki' });
  } catch {
    try {
      key = new X509Certificate(der).publicKey;
    } catch {
      throw new Error('x509: failed to parse public key');
    }
  }
  if (key.asymmetricKeyType !== family) throw new Error(`key is not a valid ${familyName[family]} public key`);
  return key;
}
