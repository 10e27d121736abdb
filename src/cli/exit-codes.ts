/**
 * The command's exit status for every failure, in one table: 2 for usage errors (commander's),
 * BSD sysexits values where a script can act on them (try again later, a service to reach),
 * 1 for everything else.
 */
import { FlowerError, type ErrorCode } from '../errors.js';

export const EXIT_USAGE = 2;
const EXIT_FAILURE = 1;

const EXIT_CODES: Partial<Record<ErrorCode, number>> = {
  index_locked: 75, // EX_TEMPFAIL: another writer is at work, run again later
  no_network: 69, // EX_UNAVAILABLE: a server could not be reached
  store_unavailable: 69,
};

export function exitCodeFor(err: unknown): number {
  return err instanceof FlowerError ? (EXIT_CODES[err.code] ?? EXIT_FAILURE) : EXIT_FAILURE;
}
