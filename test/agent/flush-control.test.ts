import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FlushControl } from '../../src/agent/flush/flush-control.ts';
import type { FlushStrategy } from '../../src/agent/flush/strategy.ts';

/** A FlushControl on a clock the test moves by hand. */
function controlled(strategy: FlushStrategy, options: { flushTimeoutMs?: number; managedInstances?: boolean } = {}) {
  const clock = { now: 1_000_000 };
  const control = new FlushControl({
    strategy,
    flushTimeoutMs: options.flushTimeoutMs ?? 30_000,
    managedInstances: options.managedInstances ?? false,
    now: () => clock.now,
  });
  return { clock, control };
}

describe('FlushControl: end', () => {
  test('a blocking flush at the end of every invocation, nothing at the start, no timers', () => {
    const { clock, control } = controlled({ kind: 'end' });
    for (let i = 0; i < 30; i++) {
      assert.equal(control.invocationStarted(), 'end');
      assert.equal(control.atInvocationStart(), 'none');
      assert.equal(control.atInvocationEnd(), 'blocking');
      control.flushed();
      clock.now += 100;
    }
    assert.equal(control.raceIntervalMs(), undefined);
    assert.equal(control.backgroundIntervalMs(), undefined);
  });
});

describe('FlushControl: end,N', () => {
  test('flushes at the end only when N ms have passed since the last flush', () => {
    const { clock, control } = controlled({ kind: 'end-periodically', intervalMs: 1000 });
    assert.equal(control.invocationStarted(), 'end', 'the first invocation: no flush yet, so due');
    assert.equal(control.atInvocationEnd(), 'blocking');
    control.flushed();

    clock.now += 400;
    assert.equal(control.invocationStarted(), 'dont');
    assert.equal(control.atInvocationEnd(), 'none');

    clock.now += 600; // exactly N since the flush: not yet past it
    assert.equal(control.invocationStarted(), 'dont');

    clock.now += 1;
    assert.equal(control.invocationStarted(), 'end');
    assert.equal(control.atInvocationStart(), 'none');
    assert.equal(control.atInvocationEnd(), 'blocking');
  });

  test('the race timer runs at N, so a long invocation flushes periodically', () => {
    const { control } = controlled({ kind: 'end-periodically', intervalMs: 2500 });
    assert.equal(control.raceIntervalMs(), 2500);
    assert.equal(control.backgroundIntervalMs(), undefined);
  });

  test('the decision is fixed when the invocation starts, as Datadog evaluates it once', () => {
    const { clock, control } = controlled({ kind: 'end-periodically', intervalMs: 1000 });
    control.invocationStarted();
    control.flushed();
    clock.now += 500;
    assert.equal(control.invocationStarted(), 'dont');
    clock.now += 5000; // the invocation runs long; its end still follows the decision made at its start
    assert.equal(control.atInvocationEnd(), 'none');
  });
});

describe('FlushControl: periodically,N', () => {
  test('a blocking flush at the start of an invocation when due, never at the end', () => {
    const { clock, control } = controlled({ kind: 'periodically', intervalMs: 10_000 });
    assert.equal(control.invocationStarted(), 'periodic');
    assert.equal(control.atInvocationStart(), 'blocking');
    assert.equal(control.atInvocationEnd(), 'none');
    control.flushed();

    clock.now += 5_000;
    assert.equal(control.invocationStarted(), 'dont');
    assert.equal(control.atInvocationStart(), 'none');

    clock.now += 5_001;
    assert.equal(control.invocationStarted(), 'periodic');
    assert.equal(control.atInvocationStart(), 'blocking');
    assert.equal(control.raceIntervalMs(), undefined);
  });
});

describe('FlushControl: continuously,N', () => {
  test('a background flush at the start when due and none is pending', () => {
    const { clock, control } = controlled({ kind: 'continuously', intervalMs: 1000 });
    assert.equal(control.invocationStarted(), 'continuous');
    assert.equal(control.atInvocationStart(), 'background');
    assert.equal(control.atInvocationEnd(), 'none');
    control.flushStarted();
    assert.equal(control.flushPending, true);

    clock.now += 2000; // due again, but the previous background flush has not settled
    assert.equal(control.invocationStarted(), 'continuous');
    assert.equal(control.atInvocationStart(), 'none');

    control.flushSettled();
    assert.equal(control.flushPending, false);
    assert.equal(control.atInvocationStart(), 'background');
    control.flushStarted();
    control.flushSettled();

    clock.now += 10;
    assert.equal(control.invocationStarted(), 'dont', 'flushStarted counts as a flush for the interval');
    assert.equal(control.atInvocationStart(), 'none');
  });

  test('flushSettled never takes the pending count below zero', () => {
    const { control } = controlled({ kind: 'continuously', intervalMs: 1000 });
    control.flushSettled();
    control.flushStarted();
    assert.equal(control.flushPending, true);
    control.flushSettled();
    assert.equal(control.flushPending, false);
  });
});

describe('FlushControl: the adaptive default', () => {
  test('End for the first 19 invocations, with a 60 s race timer', () => {
    const { clock, control } = controlled({ kind: 'default' });
    assert.equal(control.decision(), 'end', 'before any invocation');
    for (let i = 0; i < 19; i++) {
      assert.equal(control.invocationStarted(), 'end', `invocation ${i + 1}`);
      assert.equal(control.atInvocationEnd(), 'blocking');
      control.flushed();
      clock.now += 100;
    }
    assert.deepEqual(control.effectiveStrategy(), { kind: 'end' });
    assert.equal(control.raceIntervalMs(), 60_000);
  });

  test('20 invocations within the flush timeout → Continuously every 20 s', () => {
    const { clock, control } = controlled({ kind: 'default' });
    for (let i = 0; i < 19; i++) {
      control.invocationStarted();
      control.flushed();
      clock.now += 100;
    }
    // The 20th start: 1.9 s after the first, within DD_FLUSH_TIMEOUT (30 s); the last flush was 0.1 s ago.
    assert.equal(control.invocationStarted(), 'dont');
    assert.deepEqual(control.effectiveStrategy(), { kind: 'continuously', intervalMs: 20_000 });
    assert.equal(control.atInvocationEnd(), 'none', 'no more end-of-invocation flushes');

    clock.now += 20_001;
    assert.equal(control.invocationStarted(), 'continuous');
    assert.equal(control.atInvocationStart(), 'background');
    assert.equal(control.raceIntervalMs(), 60_000, 'the default keeps its race timer');
  });

  test('frequent but spread past the flush timeout → Periodically every 20 s', () => {
    const { clock, control } = controlled({ kind: 'default' });
    for (let i = 0; i < 19; i++) {
      control.invocationStarted();
      control.flushed();
      clock.now += 10_000; // mean gap 10 s < 120 s; 20 starts span 190 s > 30 s
    }
    assert.equal(control.invocationStarted(), 'dont');
    assert.deepEqual(control.effectiveStrategy(), { kind: 'periodically', intervalMs: 20_000 });
    clock.now += 20_001;
    assert.equal(control.invocationStarted(), 'periodic');
    assert.equal(control.atInvocationStart(), 'blocking');
  });

  test('a mean gap of 120 s or more stays End, and going quiet returns to End', () => {
    const { clock, control } = controlled({ kind: 'default' });
    for (let i = 0; i < 20; i++) {
      assert.equal(control.invocationStarted(), 'end');
      clock.now += 120_000;
    }
    assert.deepEqual(control.effectiveStrategy(), { kind: 'end' });

    // A burst adapts it...
    for (let i = 0; i < 20; i++) {
      control.invocationStarted();
      clock.now += 500;
    }
    assert.equal(control.effectiveStrategy().kind, 'continuously');
    // ...and a long silence (the ring's mean gap grows past 120 s) brings End back.
    clock.now += 19 * 120_000;
    assert.equal(control.invocationStarted(), 'end');
    assert.equal(control.atInvocationEnd(), 'blocking');
  });

  test('the flush timeout decides between Continuously and Periodically', () => {
    const fast = controlled({ kind: 'default' }, { flushTimeoutMs: 5_000 });
    for (let i = 0; i < 20; i++) {
      fast.control.invocationStarted();
      fast.clock.now += 1000; // 20 starts over 19 s: past a 5 s timeout
    }
    assert.equal(fast.control.effectiveStrategy(fast.clock.now - 1000).kind, 'periodically');
  });
});

describe('FlushControl: managed instances', () => {
  test('the default becomes Continuously 30 s in the background, silently', () => {
    const { control } = controlled({ kind: 'default' }, { managedInstances: true });
    assert.deepEqual(control.strategy, { kind: 'continuously', intervalMs: 30_000 });
    assert.equal(control.warning, undefined);
    assert.equal(control.backgroundIntervalMs(), 30_000);
    assert.equal(control.raceIntervalMs(), undefined);
  });

  test('continuously,N is honoured', () => {
    const { control } = controlled({ kind: 'continuously', intervalMs: 5000 }, { managedInstances: true });
    assert.deepEqual(control.strategy, { kind: 'continuously', intervalMs: 5000 });
    assert.equal(control.warning, undefined);
    assert.equal(control.backgroundIntervalMs(), 5000);
  });

  for (const strategy of [
    { kind: 'end' },
    { kind: 'end-periodically', intervalMs: 1000 },
    { kind: 'periodically', intervalMs: 60_000 },
  ] as FlushStrategy[]) {
    test(`${strategy.kind} is overridden with a warning`, () => {
      const { control } = controlled(strategy, { managedInstances: true });
      assert.deepEqual(control.strategy, { kind: 'continuously', intervalMs: 30_000 });
      assert.ok(control.warning);
      assert.match(control.warning, /managed instances/);
      assert.match(control.warning, /continuously,30000/);
      assert.equal(control.backgroundIntervalMs(), 30_000);
    });
  }

  test('no invoke ever waits: per-invocation answers are none; a tick skips while a flush is pending', () => {
    const { clock, control } = controlled({ kind: 'end' }, { managedInstances: true });
    for (let i = 0; i < 25; i++) {
      assert.equal(control.invocationStarted(), 'dont');
      assert.equal(control.atInvocationStart(), 'none');
      assert.equal(control.atInvocationEnd(), 'none');
      clock.now += 100;
    }
    assert.equal(control.atBackgroundTick(), 'background');
    control.flushStarted();
    assert.equal(control.atBackgroundTick(), 'none');
    control.flushSettled();
    assert.equal(control.atBackgroundTick(), 'background');
  });

  test('outside managed instances there is no background timer', () => {
    const { control } = controlled({ kind: 'continuously', intervalMs: 1000 });
    assert.equal(control.backgroundIntervalMs(), undefined);
    assert.equal(control.warning, undefined);
  });
});
