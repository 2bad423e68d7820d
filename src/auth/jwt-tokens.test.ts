import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, createSecretKey, generateKeyPairSync } from 'node:crypto';
import { isEtcdError } from '../errors/index.js';
import { JwtTokens, type JwtAlg } from './jwt-tokens.js';

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const hmac = createSecretKey(Buffer.from('0123456789abcdef0123456789abcdef'));
const keysFor = (alg: JwtAlg) => alg.startsWith('HS') ? { signKey: hmac, verifyKey: hmac }
  : alg.startsWith('ES') ? { signKey: ec.privateKey, verifyKey: ec.publicKey } : { signKey: rsa.privateKey, verifyKey: rsa.publicKey };

test('JWT: a signed token gives back its user and revision for each method; tampering, another method or expiry make it invalid', async () => {
  let now = 1_700_000_000_000;
  for (const alg of ['RS256', 'PS256', 'ES256', 'HS256', 'RS512', 'HS384'] as const) {
    const t = new JwtTokens({ alg, ...keysFor(alg), ttlMs: 60_000 }, undefined, () => now);
    const token = await t.sign('alice', 7);
    assert.deepEqual(t.info(token), { username: 'alice', revision: 7 }, alg);
    const [h, p, s] = token.split('.') as [string, string, string];
    const forged = Buffer.from(JSON.stringify({ username: 'root', revision: 7, exp: 9e9 })).toString('base64url');
    assert.equal(t.info(`${h}.${forged}.${s}`), undefined, `${alg}: claims changed under the signature`);
    assert.equal(t.info(`${h}.${p}`), undefined);
    const none = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
    assert.equal(t.info(`${none}.${p}.`), undefined, `${alg}: alg none`);
    now += 61_000;
    assert.equal(t.info(token), undefined, `${alg}: expired`);
    now -= 61_000;
  }
});

test('JWT: a provider given only a public key verifies but cannot sign (etcd ErrVerifyOnly)', async () => {
  const signer = new JwtTokens({ alg: 'RS256', signKey: rsa.privateKey, verifyKey: rsa.publicKey, ttlMs: 60_000 });
  const verifier = new JwtTokens({ alg: 'RS256', verifyKey: createPublicKey(rsa.privateKey), ttlMs: 60_000 });
  assert.deepEqual(verifier.info(await signer.sign('bob', 3)), { username: 'bob', revision: 3 });
  await assert.rejects(verifier.sign('bob', 3), (e) => isEtcdError(e, 'JwtVerifyOnly'));
});
