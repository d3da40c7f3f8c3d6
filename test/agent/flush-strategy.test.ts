import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { formatFlushStrategy, parseFlushStrategy } from '../../src/agent/flush/strategy.ts';

describe('parseFlushStrategy', () => {
  test('unset or blank is the default, without a warning', () => {
    for (const raw of [undefined, '', '   ']) {
      assert.deepEqual(parseFlushStrategy(raw), { strategy: { kind: 'default' } });
    }
  });

  test('the four accepted forms', () => {
    assert.deepEqual(parseFlushStrategy('end'), { strategy: { kind: 'end' } });
    assert.deepEqual(parseFlushStrategy('end,5000'), { strategy: { kind: 'end-periodically', intervalMs: 5000 } });
    assert.deepEqual(parseFlushStrategy('periodically,60000'), { strategy: { kind: 'periodically', intervalMs: 60000 } });
    assert.deepEqual(parseFlushStrategy('continuously,1000'), { strategy: { kind: 'continuously', intervalMs: 1000 } });
  });

  test('whitespace around the parts and upper case are tolerated', () => {
    assert.deepEqual(parseFlushStrategy('  periodically , 250 '), { strategy: { kind: 'periodically', intervalMs: 250 } });
    assert.deepEqual(parseFlushStrategy(' END '), { strategy: { kind: 'end' } });
    assert.deepEqual(parseFlushStrategy('Continuously,10'), { strategy: { kind: 'continuously', intervalMs: 10 } });
  });

  for (const raw of [
    'sometimes',
    'periodically',
    'continuously',
    'periodically,',
    'periodically,0',
    'end,0',
    'continuously,-5',
    'periodically,1.5',
    'periodically,1e3',
    'periodically,0x10',
    'periodically,abc',
    'periodically,100,200',
    'end,',
    ',100',
    'periodically,9999999999999999999999',
  ]) {
    test(`${JSON.stringify(raw)} falls back to the default with a warning naming it`, () => {
      const parsed = parseFlushStrategy(raw);
      assert.deepEqual(parsed.strategy, { kind: 'default' });
      assert.ok(parsed.warning, 'a warning');
      assert.ok(parsed.warning.includes(JSON.stringify(raw)), parsed.warning);
      assert.match(parsed.warning, /`end`, `end,N`, `periodically,N` or `continuously,N`/);
    });
  }

  test('formatFlushStrategy writes each strategy back in its variable form', () => {
    for (const raw of ['end', 'end,5000', 'periodically,60000', 'continuously,1000']) {
      assert.equal(formatFlushStrategy(parseFlushStrategy(raw).strategy), raw);
    }
    assert.equal(formatFlushStrategy({ kind: 'default' }), 'default');
  });
});
