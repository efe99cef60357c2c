import type { TestRegistry } from '../../test/helpers/registry.js';
import type { Figures } from '../lib/report.js';

/** What every supply-chain figure producer gets: one loopback docker-registry and a scratch directory. */
export interface SupplyChainContext {
  registry: TestRegistry;
  /** A directory the producer may write into; removed when the run ends. */
  scratch: string;
  /** Repetitions per figure (fewer with --quick). */
  runs: number;
}

/** What a producer reports: Skiff's figures and, by peer, the peers' figures. */
export interface ProducedFigures {
  figures: Figures;
  peers?: Record<string, Figures>;
}

/**
 * FigureProducer measures one group of the supply-chain figures. Producers live in their own files
 * under bench/supply-chain/ and are listed in bench/supply-chain.ts; they run one after another.
 */
export interface FigureProducer {
  name: string;
  run(ctx: SupplyChainContext): Promise<ProducedFigures>;
}

/** median of samples (milliseconds). */
export function median(samples: number[]): number {
  const s = [...samples].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)]! : NaN;
}
