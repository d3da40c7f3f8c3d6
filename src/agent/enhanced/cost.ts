/**
 * Lambda's on-demand price of one invocation, as Datadog's `estimated_cost` computes it
 * (datadog-extension-notes.md §3): the request charge plus GB-seconds at the us-east-1
 * rate of the architecture. No free tier, no regional or provisioned-concurrency prices.
 */

/** USD per request. */
const requestPrice = 0.0000002;
/** USD per GB-second. */
const gbSecondPrice = { x86_64: 0.0000166667, arm64: 0.0000133334 } as const;

export function estimatedCost(billedDurationMs: number, memoryMb: number, architecture: 'x86_64' | 'arm64'): number {
  const gbSeconds = (billedDurationMs / 1000) * (memoryMb / 1024);
  const cost = requestPrice + gbSeconds * gbSecondPrice[architecture];
  // Rounded to 1e-12 USD, as Datadog does, so that float noise does not show.
  return Math.round(cost * 1e12) / 1e12;
}
