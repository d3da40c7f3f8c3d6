/**
 * The WAF engine: which rules it loads, what it says about them, broken rules files at start
 * and on reload (the previous rules stay), a host where libddwaf cannot load, and the time
 * budget holding on huge bodies and header counts.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { WafEngine, WafRunError } from '../../src/agent/appsec/waf-engine.ts';
import { RulesetError, inspectCookiesLikeQuery, parseRuleset, resolveRulesetPath } from '../../src/agent/appsec/ruleset.ts';

const require = createRequire(import.meta.url);
const recommendedPath = require.resolve('dd-trace/packages/dd-trace/src/appsec/recommended.json');
const recommended = require(recommendedPath) as { metadata: { rules_version: string }; rules: unknown[] };

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'nimbus-appsec-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A one-rule ruleset that matches `needle` anywhere in the query. */
function ruleset(id: string, needle: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    version: '2.2',
    metadata: { rules_version: `test-${id}` },
    rules: [
      {
        id,
        name: `finds ${needle}`,
        tags: { type: 'test_category', category: 'attack_attempt' },
        conditions: [{ operator: 'match_regex', parameters: { inputs: [{ address: 'server.request.query' }], regex: needle } }],
      },
    ],
    ...extra,
  };
}

async function rulesFile(name: string, content: unknown): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

function matches(engine: WafEngine, query: Record<string, string>): string[] {
  const context = engine.createContext();
  assert.ok(context, 'the engine is available');
  try {
    return context.run({ 'server.request.query': query }, 100_000).events.map((e) => e.rule.id);
  } finally {
    context.dispose();
  }
}

describe('rules', () => {
  test('by default: Datadog recommended ruleset from dd-trace, with its version and counts', async () => {
    const logs: string[] = [];
    const engine = await WafEngine.start({ bundleDir: dir, log: (level, m) => logs.push(`${level} ${m}`) });
    try {
      assert.equal(engine.available, true);
      assert.equal(engine.unavailableReason, undefined);
      assert.match(engine.wafVersion ?? '', /^\d+\.\d+\.\d+$/);
      const info = engine.ruleset!;
      assert.equal(info.path, recommendedPath);
      assert.equal(info.version, recommended.metadata.rules_version);
      assert.ok(info.loaded >= 150, `loaded ${info.loaded} rules`);
      assert.equal(info.failed, 0);
      assert.equal(info.explicitActions, false, 'the recommended ruleset defines no actions: block mode blocks every attack');
      assert.ok(info.cookieInputsAdded > 10, 'injection rules extended to cookies');
      assert.ok(logs.some((l) => l.startsWith('info ') && l.includes(`rules ${info.version}`) && l.includes(`${info.loaded} loaded, 0 failed`)), logs.join('\n'));
    } finally {
      engine.dispose();
    }
  });

  test('recommended.json beside the agent bundle wins over dd-trace; a configured file wins over both', async () => {
    const bundleDir = await mkdtemp(path.join(dir, 'bundle-'));
    await writeFile(path.join(bundleDir, 'recommended.json'), JSON.stringify(ruleset('beside-1', 'beside')));
    assert.equal(resolveRulesetPath({ bundleDir }), path.join(bundleDir, 'recommended.json'));
    const beside = await WafEngine.start({ bundleDir });
    assert.equal(beside.ruleset?.version, 'test-beside-1');
    assert.deepEqual(matches(beside, { q: 'beside' }), ['beside-1']);
    beside.dispose();

    const configured = await rulesFile('configured.json', ruleset('conf-1', 'configured'));
    const engine = await WafEngine.start({ bundleDir, configured });
    assert.equal(engine.ruleset?.path, configured);
    assert.deepEqual(matches(engine, { q: 'configured beside' }), ['conf-1']);
    engine.dispose();
  });

  test('a rules file with explicit actions says so (block mode then follows the rules)', () => {
    const parsed = parseRuleset(JSON.stringify(ruleset('a', 'x', { actions: [{ id: 'block', type: 'block_request', parameters: { status_code: 451, type: 'json' } }] })), 'mem.json');
    assert.equal(parsed.explicitActions, true);
  });

  test('cookies are inspected by the injection rules only, never twice', () => {
    type Input = { address: string; key_path?: string[] };
    const rules: { rules: Array<{ id: string; tags: { type: string }; conditions: Array<{ parameters: { inputs: Input[] } }> | string }> } = {
      rules: [
        { id: 'a', tags: { type: 'sql_injection' }, conditions: [{ parameters: { inputs: [{ address: 'server.request.query' }] } }] },
        { id: 'b', tags: { type: 'attack_tool' }, conditions: [{ parameters: { inputs: [{ address: 'server.request.query' }] } }] },
        { id: 'c', tags: { type: 'xss' }, conditions: [{ parameters: { inputs: [{ address: 'server.request.headers.no_cookies', key_path: ['referer'] }] } }] },
        { id: 'd', tags: { type: 'lfi' }, conditions: [{ parameters: { inputs: [{ address: 'server.request.query' }, { address: 'server.request.cookies' }] } }] },
        { id: 'e', tags: { type: 'ssrf' }, conditions: 'not a list' },
      ],
    };
    assert.equal(inspectCookiesLikeQuery(rules), 1);
    const inputsOf = (i: number): Input[] => (rules.rules[i]!.conditions as Array<{ parameters: { inputs: Input[] } }>)[0]!.parameters.inputs;
    assert.deepEqual(inputsOf(0).map((i) => i.address), ['server.request.query', 'server.request.cookies']);
    assert.equal(inputsOf(1).length, 1);
    assert.equal(inputsOf(2).length, 1);
    assert.equal(inspectCookiesLikeQuery(rules), 0, 'idempotent');
  });
});

describe('broken rules files', () => {
  const cases: Array<[string, string | unknown, RegExp]> = [
    ['not JSON', '{"version": "2.2", "rules": [', /is not valid JSON/],
    ['a JSON array', '[1, 2]', /must hold a JSON object/],
    ['no rules', { version: '2.2', metadata: { rules_version: '1' } }, /has no "rules"/],
    ['rules not a list', { version: '2.2', rules: { id: 'x' } }, /"rules" must be an array/],
    ['rules libddwaf refuses', { version: '2.2', rules: [{ id: 'x', name: 'no conditions' }] }, /refused by libddwaf/],
  ];
  for (const [name, content, message] of cases) {
    test(`at start (${name}): a clear error, the engine stays off, requests pass`, async () => {
      const file = await rulesFile(`broken-${name.replace(/\W+/g, '-')}.json`, content);
      const logs: string[] = [];
      const engine = await WafEngine.start({ configured: file, log: (level, m) => logs.push(`${level} ${m}`) });
      assert.equal(engine.available, false);
      assert.match(engine.unavailableReason!, message);
      assert.ok(engine.unavailableReason!.includes(file), 'names the file');
      assert.equal(engine.createContext(), undefined);
      assert.ok(logs.some((l) => l.startsWith('error threat detection is off') && l.includes(file)), logs.join('\n'));
    });
  }

  test('a missing rules file: a clear error', async () => {
    const engine = await WafEngine.start({ configured: path.join(dir, 'nope.json') });
    assert.equal(engine.available, false);
    assert.match(engine.unavailableReason!, /cannot read WAF rules file .*nope\.json/);
  });

  test('on reload: RulesetError, and the previous rules stay in force', async () => {
    const first = await rulesFile('first.json', ruleset('first-1', 'alpha'));
    const engine = await WafEngine.start({ configured: first });
    try {
      assert.deepEqual(matches(engine, { q: 'alpha' }), ['first-1']);
      const before = engine.ruleset;
      for (const [name, content] of cases) {
        const broken = await rulesFile(`reload-${name.replace(/\W+/g, '-')}.json`, content);
        await assert.rejects(engine.reload(broken), (err: Error) => {
          assert.ok(err instanceof RulesetError);
          assert.ok(err.message.includes(broken));
          return true;
        });
        assert.deepEqual(matches(engine, { q: 'alpha' }), ['first-1'], `still the first rules after "${name}"`);
        assert.deepEqual(engine.ruleset, before);
      }
      await assert.rejects(engine.reload(path.join(dir, 'missing.json')), RulesetError);

      const second = await rulesFile('second.json', ruleset('second-1', 'beta'));
      const info = await engine.reload(second);
      assert.equal(info.version, 'test-second-1');
      assert.deepEqual(matches(engine, { q: 'alpha beta' }), ['second-1']);
    } finally {
      engine.dispose();
    }
  });

  test('a rules file where some rules fail loads the rest and reports the failures', async () => {
    const mixed = ruleset('good-1', 'good');
    (mixed.rules as unknown[]).push({ id: 'bad-1', name: 'bad', tags: { type: 't', category: 'attack_attempt' }, conditions: [{ operator: 'no_such_operator', parameters: {} }] });
    const logs: string[] = [];
    const engine = await WafEngine.start({ configured: await rulesFile('mixed.json', mixed), log: (level, m) => logs.push(`${level} ${m}`) });
    try {
      assert.equal(engine.ruleset?.loaded, 1);
      assert.equal(engine.ruleset?.failed, 1);
      assert.ok(Object.values(engine.ruleset!.errors).flat().includes('bad-1'));
      assert.ok(logs.some((l) => l.startsWith('warn') && l.includes('bad-1')), logs.join('\n'));
      assert.deepEqual(matches(engine, { q: 'good' }), ['good-1']);
    } finally {
      engine.dispose();
    }
  });
});

describe('a host where libddwaf cannot load', () => {
  test('says so, stays unavailable, never throws', async () => {
    const logs: string[] = [];
    const engine = await WafEngine.start({
      loadBinding: () => {
        throw new Error('No native build was found for platform=linux arch=riscv64');
      },
      log: (level, m) => logs.push(`${level} ${m}`),
    });
    assert.equal(engine.available, false);
    assert.equal(engine.wafVersion, undefined);
    assert.match(engine.unavailableReason!, /@datadog\/native-appsec\) cannot load on this host .*riscv64/);
    assert.equal(engine.createContext(), undefined);
    assert.equal(logs.length, 1);
    await assert.rejects(engine.reload(recommendedPath), RulesetError);
  });
});

describe('time budget', () => {
  let engine: WafEngine;
  before(async () => {
    engine = await WafEngine.start();
  });
  after(() => engine.dispose());

  function hugeAddresses(): Record<string, unknown> {
    const headers: Record<string, string> = {};
    for (let i = 0; i < 5000; i++) headers[`x-header-${i}`] = `value ${i} <b>bold</b> ../${i}`;
    const body = { items: Array.from({ length: 20_000 }, (_, i) => ({ id: i, text: `item ${i} 'quoted' "and" <tag>`.repeat(4) })) };
    return { 'server.request.headers.no_cookies': headers, 'server.request.body': body, 'server.request.query': { q: 'x'.repeat(1_000_000) } };
  }

  test('a huge body and 5,000 headers with a 1 µs budget: the run stops and says timeout', () => {
    const context = engine.createContext()!;
    try {
      const result = context.run(hugeAddresses(), 1);
      assert.equal(result.timeout, true);
      assert.ok(result.durationMicros >= 0);
    } finally {
      context.dispose();
    }
  });

  test('the same input with the default 5 ms budget finishes or times out, and never throws', () => {
    const context = engine.createContext()!;
    try {
      const result = context.run(hugeAddresses(), 5000);
      assert.equal(typeof result.timeout, 'boolean');
      assert.ok(Array.isArray(result.events));
    } finally {
      context.dispose();
    }
  });

  test('a disposed context refuses to run with a WafRunError', () => {
    const context = engine.createContext()!;
    context.dispose();
    context.dispose();
    assert.equal(context.disposed, true);
    assert.throws(() => context.run({ 'server.request.query': { q: 'x' } }, 5000), WafRunError);
  });
});
