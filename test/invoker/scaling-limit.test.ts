import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ScalingLimit } from '../../src/invoker/scaling-limit.ts';

test('a function starts at most N environments per window, refilled continuously, per function', () => {
  const limit = new ScalingLimit(3, 10_000);
  for (let i = 0; i < 3; i++) limit.take('a', 0);
  assert.throws(() => limit.take('a', 1), (err: Error & { extraBody?: Record<string, unknown> }) => {
    assert.equal(err.name, 'TooManyRequestsException');
    assert.equal(err.extraBody?.Reason, 'ConcurrentInvocationLimitExceeded');
    return true;
  });
  limit.take('b', 1); // another function has its own budget
  assert.throws(() => limit.take('a', 3000)); // 0.9 of a token after 3 s
  limit.take('a', 3400); // a whole token after 3.33 s
  assert.throws(() => limit.take('a', 3401));
});
