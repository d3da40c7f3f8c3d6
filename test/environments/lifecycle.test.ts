/**
 * The lifecycle tables walked state by state, forbidden transitions included (as RIE's
 * states_test.go does), Lambda's shutdown budgets, and the log collector's attribution
 * of lines when several invocations share an environment.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StateMachine, InvalidStateTransitionError, type TransitionTable } from '../../src/lifecycle/state-machine.ts';
import {
  environmentTransitions,
  extensionTransitions,
  invocationTransitions,
  shutdownBudget,
  shutdownReasonFor,
} from '../../src/environments/lifecycle.ts';
import { LogCollector } from '../../src/environments/log-collector.ts';
import type { FunctionLogLine } from '../../src/environments/types.ts';

function walk<S extends string>(name: string, table: TransitionTable<S>): void {
  const states = Object.keys(table) as S[];
  for (const from of states) {
    for (const to of states) {
      const machine = new StateMachine<S>(name, from, table);
      if (table[from].includes(to)) {
        machine.transition(to);
        assert.equal(machine.state, to);
      } else {
        assert.throws(() => machine.transition(to), InvalidStateTransitionError, `${name}: ${from} -> ${to} must be refused`);
        assert.equal(machine.state, from, 'a refused transition changes nothing');
      }
    }
  }
}

test('every transition of the environment, invocation and extension machines, allowed or refused', () => {
  walk('environment', environmentTransitions);
  walk('invocation', invocationTransitions);
  walk('extension', extensionTransitions);
  // Spot checks of what Lambda's lifecycle forbids.
  assert.ok(!environmentTransitions.stopped.length, 'stopped is final');
  assert.ok(!environmentTransitions.created.includes('ready'), 'no invoke without Init');
  assert.ok(!invocationTransitions.done.length);
  assert.ok(!extensionTransitions.started.includes('ready'), 'an extension registers before it calls next');
  assert.ok(!extensionTransitions.ready.includes('init-error'), 'init/error only before the first next');
});

test("Lambda's shutdown budgets and the reasons extensions see", () => {
  assert.deepEqual(shutdownBudget(0, 0), { totalMs: 0, runtimeMs: 0 });
  assert.deepEqual(shutdownBudget(0, 2), { totalMs: 500, runtimeMs: 500 });
  assert.deepEqual(shutdownBudget(1, 0), { totalMs: 2000, runtimeMs: 300 });
  assert.deepEqual(shutdownBudget(3, 1), { totalMs: 2000, runtimeMs: 500 });
  assert.equal(shutdownReasonFor('shutdown'), 'spindown');
  assert.equal(shutdownReasonFor('timeout'), 'timeout');
  assert.equal(shutdownReasonFor('failure'), 'failure');
});

test('log lines of concurrent invocations go to the one they name; tails stay apart', () => {
  const lines: FunctionLogLine[] = [];
  const seen: string[] = [];
  const logs = new LogCollector({ write: (l) => lines.push(l) }, 'fn', 'stream', (kind, message) => seen.push(`${kind}:${message}`));
  logs.beginInvoke('aaaa', true);
  logs.onOutput('runtime:stdout', 'function', Buffer.from('only one in flight\n'));
  logs.beginInvoke('bbbb', true);
  logs.onOutput('runtime:stdout', 'function', Buffer.from('2026-01-01T00:00:00.000Z\tbbbb\tINFO\tfor b\n2026-01-01T00:00:00.000Z\taaaa\tINFO\tfor '));
  logs.onOutput('runtime:stdout', 'function', Buffer.from('a\nnobody\n'));
  logs.onOutput('extension:x:stdout', 'extension', Buffer.from('from an extension\n'));
  logs.platform('END RequestId: bbbb', 'bbbb');
  const tailB = logs.endInvoke('bbbb')!;
  const tailA = logs.endInvoke('aaaa')!;
  assert.equal(tailA, 'only one in flight\n2026-01-01T00:00:00.000Z\taaaa\tINFO\tfor a\n');
  assert.equal(tailB, '2026-01-01T00:00:00.000Z\tbbbb\tINFO\tfor b\nEND RequestId: bbbb\n');
  assert.deepEqual(
    lines.map((l) => [l.message.split('\t').at(-1), l.requestId]),
    [
      ['only one in flight', 'aaaa'],
      ['for b', 'bbbb'],
      ['for a', 'aaaa'],
      ['nobody', undefined],
      ['from an extension', undefined],
      ['END RequestId: bbbb', 'bbbb'],
    ],
  );
  assert.deepEqual(seen.map((s) => s.split(':')[0]), ['function', 'function', 'function', 'function', 'extension'], 'platform lines are not log records');
});
