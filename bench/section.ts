/**
 * The contract between `bench/run.ts` and each bench section (kernels, encoder, end to end,
 * server): a section measures, then hands back its figures for the results JSON and a markdown
 * block for the terminal summary.
 */

export interface SectionOptions {
  /** `--quick`: smaller sizes and fewer runs, so the whole suite stays under 2 minutes. */
  readonly quick: boolean;
  /** Runs per figure (each figure is the median of these, with min–max). */
  readonly runs: number;
  /** Progress lines for the terminal (stderr), so stdout stays the summary. */
  readonly log: (line: string) => void;
}

export interface SectionResult {
  /** Machine-readable figures, written under the section's key in the results JSON. */
  readonly data: Record<string, unknown>;
  /** Markdown for the printed summary: tables, plus what the figures are compared against. */
  readonly markdown: string;
}

export type BenchSection = (options: SectionOptions) => Promise<SectionResult>;
