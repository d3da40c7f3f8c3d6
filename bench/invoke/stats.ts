/** Small statistics helpers. */
import type { Median } from './types.ts';

export function median(samples: number[]): Median {
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const medianMs = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { medianMs, samplesMs: samples };
}
