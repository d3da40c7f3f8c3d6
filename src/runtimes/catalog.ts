/**
 * The runtime catalog: every runtime identifier Lambda lists in its "Supported runtimes" and
 * "Deprecated runtimes" tables, with the dates of each deprecation phase, and the checks
 * CreateFunction / UpdateFunctionConfiguration apply to the `Runtime` parameter.
 *
 * Source: https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html as of August 2026
 * (the last revision reachable when this table was written). Lambda moves these dates: in
 * June 2026 it pushed most block-create dates of deprecated runtimes to 2027-02-01 and in
 * July/August 2026 their block-update dates to 2027-08-31. Each row says where its dates come
 * from when they are not read straight off that page; update rows here when AWS moves them.
 *
 * Dates are UTC calendar days (the RuntimeReleaseLifecycle API documents them as UTC): a
 * phase starts at 00:00 UTC on its date.
 */
import { InvalidParameterValueException } from '../errors/platform-errors.ts';
import type { RuntimeFamily, RuntimeInfo } from './types.ts';

/** Where a runtime stands on a given day. Lambda never blocks invocations in any phase. */
export type RuntimePhase = 'supported' | 'deprecated' | 'create-blocked' | 'update-blocked';

/** Read access to the catalog, so callers (doctor, control API) can take a fake in tests. */
export interface RuntimeCatalog {
  lookupRuntime(id: string): RuntimeInfo | undefined;
  listRuntimes(): readonly RuntimeInfo[];
}

type Dates = readonly [deprecation: string, blockCreate: string, blockUpdate: string];

function row(
  id: string,
  family: RuntimeFamily,
  displayName: string,
  languageVersion: string | undefined,
  dates: Dates | undefined,
  successor?: string,
): RuntimeInfo {
  const info: RuntimeInfo = { id, family, displayName };
  if (languageVersion !== undefined) info.languageVersion = languageVersion;
  if (dates) {
    info.deprecationDate = dates[0];
    info.blockCreateDate = dates[1];
    info.blockUpdateDate = dates[2];
  }
  if (successor !== undefined) info.successor = successor;
  return Object.freeze(info);
}

// Lambda's recommendation in its "no longer supported" message is the newest GA runtime of
// the family (e.g. nodejs12.x -> nodejs18.x in 2023), so every older row points there.
const NODE = 'nodejs24.x';
const PYTHON = 'python3.14';
const JAVA = 'java25';
const DOTNET = 'dotnet10';
const RUBY = 'ruby4.0';
const OS_ONLY = 'provided.al2023';

/**
 * Deprecated runtimes whose block dates Lambda extended in 2026: block-create 2027-02-01
 * (June 2026 revision, quoted in AWS Health notices for nodejs18.x, nodejs20.x and
 * python3.10) and block-update 2027-08-31 (July/August 2026 revision).
 */
const extended = (deprecation: string): Dates => [deprecation, '2027-02-01', '2027-08-31'];

/** Blocked long ago; Lambda lists one date for all three phases. */
const gone = (date: string): Dates => [date, date, date];

const RUNTIMES: readonly RuntimeInfo[] = Object.freeze([
  // Node.js. nodejs26.x and python3.15 are public-preview runtimes (announced August 2026):
  // CreateFunction accepts them, they have no schedule yet, and Lambda does not recommend
  // them as successors.
  row('nodejs26.x', 'nodejs', 'Node.js 26 (preview)', '26', undefined),
  row('nodejs24.x', 'nodejs', 'Node.js 24', '24', ['2028-04-30', '2028-06-01', '2028-07-01']),
  row('nodejs22.x', 'nodejs', 'Node.js 22', '22', ['2027-04-30', '2027-06-01', '2027-07-01'], NODE),
  row('nodejs20.x', 'nodejs', 'Node.js 20', '20', extended('2026-04-30'), NODE),
  row('nodejs18.x', 'nodejs', 'Node.js 18', '18', extended('2025-09-01'), NODE),
  row('nodejs16.x', 'nodejs', 'Node.js 16', '16', extended('2024-06-12'), NODE),
  row('nodejs14.x', 'nodejs', 'Node.js 14', '14', extended('2023-12-04'), NODE),
  row('nodejs12.x', 'nodejs', 'Node.js 12', '12', ['2023-03-31', '2023-03-31', '2023-04-30'], NODE),
  row('nodejs10.x', 'nodejs', 'Node.js 10', '10', ['2021-07-30', '2021-07-30', '2022-02-14'], NODE),
  row('nodejs8.10', 'nodejs', 'Node.js 8.10', '8', gone('2020-03-06'), NODE),
  row('nodejs6.10', 'nodejs', 'Node.js 6.10', '6', gone('2019-08-12'), NODE),
  row('nodejs4.3', 'nodejs', 'Node.js 4.3', '4', gone('2020-03-05'), NODE),
  // Lambda's table lists the block dates of nodejs4.3-edge before its deprecation date.
  row('nodejs4.3-edge', 'nodejs', 'Node.js 4.3 edge', '4', ['2020-03-05', '2019-04-30', '2019-04-30'], NODE),
  row('nodejs', 'nodejs', 'Node.js 0.10', '0', gone('2016-10-31'), NODE),
  // Python
  row('python3.15', 'python', 'Python 3.15 (preview)', '3.15', undefined),
  row('python3.14', 'python', 'Python 3.14', '3.14', ['2029-06-30', '2029-07-31', '2029-08-31']),
  row('python3.13', 'python', 'Python 3.13', '3.13', ['2029-06-30', '2029-07-31', '2029-08-31'], PYTHON),
  row('python3.12', 'python', 'Python 3.12', '3.12', ['2028-10-31', '2028-11-30', '2029-01-10'], PYTHON),
  row('python3.11', 'python', 'Python 3.11', '3.11', ['2027-06-30', '2027-07-31', '2027-08-31'], PYTHON),
  row('python3.10', 'python', 'Python 3.10', '3.10', extended('2026-10-31'), PYTHON),
  row('python3.9', 'python', 'Python 3.9', '3.9', extended('2025-12-15'), PYTHON),
  row('python3.8', 'python', 'Python 3.8', '3.8', extended('2024-10-14'), PYTHON),
  row('python3.7', 'python', 'Python 3.7', '3.7', extended('2023-12-04'), PYTHON),
  row('python3.6', 'python', 'Python 3.6', '3.6', ['2022-07-18', '2022-07-18', '2022-08-29'], PYTHON),
  row('python2.7', 'python', 'Python 2.7', '2.7', ['2021-07-15', '2021-07-15', '2022-05-30'], PYTHON),
  // Java
  row('java25', 'java', 'Java 25', undefined, ['2029-06-30', '2029-07-31', '2029-08-31']),
  row('java21', 'java', 'Java 21', undefined, ['2029-06-30', '2029-07-31', '2029-08-31'], JAVA),
  row('java17.al2023', 'java', 'Java 17 (AL2023)', undefined, ['2029-06-30', '2029-07-31', '2029-08-31'], JAVA),
  row('java11.al2023', 'java', 'Java 11 (AL2023)', undefined, ['2029-06-30', '2029-07-31', '2029-08-31'], JAVA),
  row('java8.al2023', 'java', 'Java 8 (AL2023)', undefined, ['2029-06-30', '2029-07-31', '2029-08-31'], JAVA),
  row('java17', 'java', 'Java 17', undefined, ['2027-06-30', '2027-07-31', '2027-08-31'], JAVA),
  row('java11', 'java', 'Java 11', undefined, ['2027-06-30', '2027-07-31', '2027-08-31'], JAVA),
  row('java8.al2', 'java', 'Java 8 (AL2)', undefined, ['2027-06-30', '2027-07-31', '2027-08-31'], JAVA),
  row('java8', 'java', 'Java 8 (AL1)', undefined, extended('2024-01-08'), JAVA),
  // .NET (dotnet9, dotnet7 and dotnet5.0 were container-image only: no `Runtime` value)
  row('dotnet10', 'dotnet', '.NET 10', undefined, ['2028-11-14', '2028-12-14', '2029-01-15']),
  row('dotnet8', 'dotnet', '.NET 8', undefined, extended('2026-11-10'), DOTNET),
  row('dotnet6', 'dotnet', '.NET 6', undefined, extended('2024-12-20'), DOTNET),
  row('dotnetcore3.1', 'dotnet', '.NET Core 3.1', undefined, ['2023-04-03', '2023-04-03', '2023-05-03'], DOTNET),
  row('dotnetcore2.1', 'dotnet', '.NET Core 2.1', undefined, ['2022-01-05', '2022-01-05', '2022-04-13'], DOTNET),
  row('dotnetcore2.0', 'dotnet', '.NET Core 2.0', undefined, gone('2019-05-30'), DOTNET),
  row('dotnetcore1.0', 'dotnet', '.NET Core 1.0', undefined, ['2019-06-27', '2019-07-30', '2019-07-30'], DOTNET),
  // Ruby
  row('ruby4.0', 'ruby', 'Ruby 4.0', undefined, ['2029-03-31', '2029-04-30', '2029-05-31']),
  row('ruby3.4', 'ruby', 'Ruby 3.4', undefined, ['2028-03-31', '2028-04-30', '2028-05-31'], RUBY),
  // Block-create as first published (deprecation is after 2027-02-01); block-update as extended.
  row('ruby3.3', 'ruby', 'Ruby 3.3', undefined, ['2027-03-31', '2027-04-30', '2027-08-31'], RUBY),
  row('ruby3.2', 'ruby', 'Ruby 3.2', undefined, extended('2026-03-31'), RUBY),
  row('ruby2.7', 'ruby', 'Ruby 2.7', undefined, extended('2023-12-07'), RUBY),
  row('ruby2.5', 'ruby', 'Ruby 2.5', undefined, ['2021-07-30', '2021-07-30', '2022-03-31'], RUBY),
  // OS-only runtimes. go1.x ran the handler binary itself; RuntimeFamily has no 'go', and
  // its replacement is an OS-only runtime, so it is filed here.
  row('provided.al2023', 'provided', 'OS-only Runtime (AL2023)', undefined, ['2029-06-30', '2029-07-31', '2029-08-31']),
  row('provided.al2', 'provided', 'OS-only Runtime (AL2)', undefined, extended('2026-07-31'), OS_ONLY),
  row('provided', 'provided', 'OS-only Runtime (AL1)', undefined, extended('2024-01-08'), OS_ONLY),
  row('go1.x', 'provided', 'Go 1.x', undefined, extended('2024-01-08'), OS_ONLY),
]);

const BY_ID: ReadonlyMap<string, RuntimeInfo> = new Map(RUNTIMES.map((info) => [info.id, info]));

export function lookupRuntime(id: string): RuntimeInfo | undefined {
  return BY_ID.get(id);
}

/** Every known runtime, newest first within each family. */
export function listRuntimes(): readonly RuntimeInfo[] {
  return RUNTIMES;
}

export const runtimeCatalog: RuntimeCatalog = Object.freeze({ lookupRuntime, listRuntimes });

function reached(date: string | undefined, now: Date): boolean {
  return date !== undefined && now.getTime() >= Date.parse(`${date}T00:00:00Z`);
}

export function runtimePhase(info: RuntimeInfo, now: Date): RuntimePhase {
  if (reached(info.blockUpdateDate, now)) return 'update-blocked';
  if (reached(info.blockCreateDate, now)) return 'create-blocked';
  if (reached(info.deprecationDate, now)) return 'deprecated';
  return 'supported';
}

function blockedFor(info: RuntimeInfo, operation: 'create' | 'update', now: Date): string | undefined {
  const date = operation === 'create' ? info.blockCreateDate : info.blockUpdateDate;
  return reached(date, now) ? date : undefined;
}

/**
 * Checks the `Runtime` of a CreateFunction ('create') or UpdateFunctionConfiguration ('update')
 * request against Lambda's schedule. Returns the runtime when it may be used, including when it
 * is deprecated but not yet blocked (the caller logs a warning: `runtimePhase` says which).
 */
export function assertRuntimeUsable(id: string, operation: 'create' | 'update', now: Date): RuntimeInfo {
  const info = lookupRuntime(id);
  if (!info) {
    // Lambda's model validation lists the values still accepted and allows a runtime ARN.
    const accepted = RUNTIMES.filter((r) => blockedFor(r, operation, now) === undefined).map((r) => r.id);
    throw new InvalidParameterValueException(
      `1 validation error detected: Value '${id}' at 'runtime' failed to satisfy constraint: ` +
        `Member must satisfy enum value set: [${accepted.join(', ')}] or be a valid ARN`,
    );
  }
  const blockedSince = blockedFor(info, operation, now);
  if (blockedSince !== undefined) {
    const verb = operation === 'create' ? 'Creating' : 'Updating';
    // Lambda's text, word for word, then when the block started (which Lambda leaves out).
    throw new InvalidParameterValueException(
      `The runtime parameter of ${id} is no longer supported for creating or updating AWS Lambda functions. ` +
        `We recommend you use the new runtime (${info.successor ?? id}) while creating or updating functions. ` +
        `${verb} functions that use ${id} has been blocked since ${blockedSince}.`,
    );
  }
  return info;
}
