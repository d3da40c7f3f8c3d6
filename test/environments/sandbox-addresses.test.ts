import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SandboxAddressPool } from '../../src/environments/sandbox-addresses.ts';

test('sandbox addresses: loopback addresses in 127.64.0.0/10, never twice while in use, reusable once released', () => {
  // A draw that repeats itself shows that a live address is skipped, and .0/.255 too.
  const draws = [5, 5, 256, 511, 7];
  const pool = new SandboxAddressPool(() => draws.shift()!);
  const a = pool.acquire();
  const b = pool.acquire();
  assert.equal(a, '127.64.0.5');
  assert.equal(b, '127.64.0.7', '5 again is in use, 256 ends in .0 and 511 in .255');
  pool.release(a);
  const again = new SandboxAddressPool(() => 5);
  assert.equal(again.acquire(), '127.64.0.5');

  const random = new SandboxAddressPool();
  const seen = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    const address = random.acquire();
    assert.match(address, /^127\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\.\d{1,3}\.\d{1,3}$/);
    assert.ok(!seen.has(address));
    seen.add(address);
  }
});
