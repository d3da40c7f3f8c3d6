/**
 * The one source of "now" for rules that depend on the date (runtime deprecation).
 * Tests set it through configuration (NIMBUS_NOW) instead of touching the system clock.
 */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** A clock pinned to a fixed instant; time does not advance. */
export function fixedClock(at: Date): Clock {
  const ms = at.getTime();
  return { now: () => new Date(ms) };
}
