/**
 * Query strings as the front doors present them: pairs in order, decoded the way API
 * Gateway and function URLs decode them (`+` is a space, `%XX` is UTF-8; a piece that
 * does not decode is passed on as sent rather than dropped).
 */

function decodeComponent(s: string): string {
  const spaced = s.replace(/\+/g, ' ');
  if (!spaced.includes('%')) return spaced;
  try {
    return decodeURIComponent(spaced);
  } catch {
    return spaced;
  }
}

/** `a=1&a=2&b` -> [['a','1'],['a','2'],['b','']] (decoded). */
export function queryPairs(rawQuery: string, decode = true): Array<[string, string]> {
  if (rawQuery === '') return [];
  const out: Array<[string, string]> = [];
  for (const piece of rawQuery.split('&')) {
    if (piece === '') continue;
    const eq = piece.indexOf('=');
    const key = eq >= 0 ? piece.slice(0, eq) : piece;
    const value = eq >= 0 ? piece.slice(eq + 1) : '';
    out.push(decode ? [decodeComponent(key), decodeComponent(value)] : [key, value]);
  }
  return out;
}

/** Each key's values in order. */
export function multiValueMap(pairs: ReadonlyArray<readonly [string, string]>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [k, v] of pairs) (out[k] ??= []).push(v);
  return out;
}

/** Each key's last value. */
export function lastValueMap(pairs: ReadonlyArray<readonly [string, string]>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of pairs) out[k] = v;
  return out;
}

/** Each key's values joined with commas (payload format 2.0). */
export function commaJoinedMap(pairs: ReadonlyArray<readonly [string, string]>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of pairs) out[k] = k in out ? `${out[k]},${v}` : v;
  return out;
}
