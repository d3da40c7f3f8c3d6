import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { InvalidParameterValueException } from '../../src/errors/platform-errors.ts';
import { runtimeCatalog, type RuntimeCatalog } from '../../src/runtimes/catalog.ts';
import { doctorReport, type DoctorResolver } from '../../src/runtimes/doctor.ts';
import { LocalLauncherResolver } from '../../src/runtimes/launcher-resolver.ts';
import type { ResolvedInterpreter, RuntimeInfo } from '../../src/runtimes/types.ts';

const NOW = new Date('2026-11-23T12:00:00Z');

const tempDirs: string[] = [];
after(async () => {
  for (const dir of tempDirs) await rm(dir, { recursive: true, force: true });
});

/** A resolver fake: answers from a table, records what it was asked. */
class FakeResolver implements DoctorResolver {
  readonly resolved: string[] = [];
  readonly answers: Record<string, ResolvedInterpreter | Error>;
  readonly unprovisioned: Set<string>;
  constructor(answers: Record<string, ResolvedInterpreter | Error>, unprovisioned: string[] = []) {
    this.answers = answers;
    this.unprovisioned = new Set(unprovisioned);
  }
  async resolve(runtimeId: string): Promise<ResolvedInterpreter> {
    this.resolved.push(runtimeId);
    const answer = this.answers[runtimeId];
    if (answer instanceof Error) throw answer;
    if (!answer) throw new InvalidParameterValueException(`no answer for ${runtimeId}`);
    return answer;
  }
  async needsProvisioning(runtimeId: string): Promise<boolean> {
    return this.unprovisioned.has(runtimeId);
  }
}

function catalogOf(...runtimes: RuntimeInfo[]): RuntimeCatalog {
  return {
    lookupRuntime: (id) => runtimes.find((r) => r.id === id),
    listRuntimes: () => runtimes,
  };
}

const lookup = (id: string): RuntimeInfo => runtimeCatalog.lookupRuntime(id)!;

describe('doctorReport', () => {
  it('reports phase, interpreter and mismatch for each runtime', async () => {
    const resolver = new FakeResolver({
      'nodejs24.x': { runtimeId: 'nodejs24.x', interpreterPath: '/usr/bin/node', interpreterVersion: 'v24.1.0', versionMismatch: false, source: 'nimbus-node' },
      'python3.12': { runtimeId: 'python3.12', interpreterPath: '/usr/bin/python3', interpreterVersion: '3.11.2', versionMismatch: true, source: 'host' },
      'provided.al2023': { runtimeId: 'provided.al2023', versionMismatch: false, source: 'none' },
      java21: new InvalidParameterValueException('Runtime java21 needs a Java 21 runtime, which is not installed on this machine: install it'),
    });
    const catalog = catalogOf(lookup('nodejs24.x'), lookup('python3.12'), lookup('provided.al2023'), lookup('java21'));
    const [node, python, provided, java] = await doctorReport(resolver, catalog, NOW);

    assert.deepEqual(node, {
      runtimeId: 'nodejs24.x',
      displayName: 'Node.js 24',
      family: 'nodejs',
      phase: 'supported',
      deprecated: false,
      deprecationDate: '2028-04-30',
      blockCreateDate: '2028-06-01',
      blockUpdateDate: '2028-07-01',
      successor: undefined,
      status: 'ready',
      interpreterPath: '/usr/bin/node',
      interpreterVersion: 'v24.1.0',
      source: 'nimbus-node',
      versionMismatch: false,
    });
    assert.equal(python?.status, 'ready');
    assert.equal(python?.versionMismatch, true);
    assert.match(python?.note ?? '', /python3\.12 will run on 3\.11\.2 \(\/usr\/bin\/python3\)/);
    assert.equal(provided?.status, 'no-interpreter');
    assert.equal(java?.status, 'unavailable');
    assert.match(java?.note ?? '', /^Runtime java21 needs a Java 21 runtime/);
  });

  it('does not provision Node.js majors unless asked', async () => {
    const nodejs22: ResolvedInterpreter = { runtimeId: 'nodejs22.x', interpreterPath: '/x/node', interpreterVersion: 'v22.1.0', versionMismatch: false, source: 'provisioned' };
    const catalog = catalogOf(lookup('nodejs22.x'));

    const lazy = new FakeResolver({ 'nodejs22.x': nodejs22 }, ['nodejs22.x']);
    const [entry] = await doctorReport(lazy, catalog, NOW);
    assert.equal(entry?.status, 'will-provision');
    assert.match(entry?.note ?? '', /will be provisioned on first use/);
    assert.deepEqual(lazy.resolved, []);

    const eager = new FakeResolver({ 'nodejs22.x': nodejs22 }, ['nodejs22.x']);
    const [provisioned] = await doctorReport(eager, catalog, NOW, { provision: true });
    assert.equal(provisioned?.status, 'ready');
    assert.equal(provisioned?.source, 'provisioned');
    assert.deepEqual(eager.resolved, ['nodejs22.x']);
  });

  it('flags deprecated runtimes and leaves out update-blocked ones unless asked', async () => {
    const any: ResolvedInterpreter = { runtimeId: 'x', interpreterPath: '/x', interpreterVersion: 'v1', versionMismatch: false, source: 'host' };
    const resolver = new FakeResolver({ 'nodejs18.x': any, 'nodejs12.x': any, 'nodejs24.x': any });
    const catalog = catalogOf(lookup('nodejs24.x'), lookup('nodejs18.x'), lookup('nodejs12.x'));

    const entries = await doctorReport(resolver, catalog, NOW);
    assert.deepEqual(entries.map((e) => [e.runtimeId, e.phase, e.deprecated]), [
      ['nodejs24.x', 'supported', false],
      ['nodejs18.x', 'deprecated', true],
    ]);
    assert.equal(entries[1]?.successor, 'nodejs24.x');

    const later = await doctorReport(resolver, catalog, new Date('2027-03-01T00:00:00Z'), { includeBlocked: true });
    assert.deepEqual(later.map((e) => [e.runtimeId, e.phase]), [
      ['nodejs24.x', 'supported'],
      ['nodejs18.x', 'create-blocked'],
      ['nodejs12.x', 'update-blocked'],
    ]);
  });

  it('lets bugs through instead of reporting them as missing interpreters', async () => {
    const resolver = new FakeResolver({ 'nodejs24.x': new TypeError('boom') });
    await assert.rejects(doctorReport(resolver, catalogOf(lookup('nodejs24.x')), NOW), TypeError);
  });

  it('runs against the real resolver and catalog without downloading anything', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'nimbus-doctor-test-'));
    tempDirs.push(dir);
    const runtimesDir = path.join(dir, 'runtimes');
    const resolver = new LocalLauncherResolver({
      runtimesDir,
      interpreterOverrides: {},
      nimbusNodePath: process.execPath,
      clientsDir: path.resolve(import.meta.dirname, '../../src/runtimes/clients'),
    });
    const entries = await doctorReport(resolver, runtimeCatalog, NOW);
    const byId = new Map(entries.map((e) => [e.runtimeId, e]));

    assert.equal(byId.get('nodejs24.x')?.status, 'ready');
    assert.equal(byId.get('nodejs24.x')?.source, 'nimbus-node');
    assert.equal(byId.get('nodejs22.x')?.status, 'will-provision');
    assert.equal(byId.get('nodejs20.x')?.deprecated, true);
    assert.equal(byId.get('python3.13')?.status, 'ready');
    assert.ok(path.isAbsolute(byId.get('python3.13')?.interpreterPath ?? ''));
    assert.equal(byId.get('provided.al2023')?.status, 'no-interpreter');
    assert.equal(byId.get('java21')?.status, 'unavailable');
    assert.ok(!byId.has('nodejs12.x'), 'update-blocked runtimes are left out by default');
    await assert.rejects(stat(runtimesDir), { code: 'ENOENT' });
  });
});
