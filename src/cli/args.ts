/** Option parsers: a bad value is a commander usage error (exit 2), named after the option. */
import { InvalidArgumentError, type Command } from 'commander';

/** What `encoderOptions` adds to a command's options: the encoder pod's settings, overridden. */
export interface EncoderCliOptions {
  replicas?: number;
  batchSize?: number;
}

/** `--replicas <n>` and `--batch-size <n>` (positive integers, overriding the index flow's encoder pod), as `index` and `worker` take them. */
export function encoderOptions(command: Command, replicas = 'encoder workers (overrides the flow)'): Command {
  return command.option('--replicas <n>', replicas, positiveInt).option('--batch-size <n>', 'chunks per encoder batch (overrides the flow)', positiveInt);
}

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError(`expected a positive integer, got '${value}'`);
  return n;
}

export function finiteNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`expected a number, got '${value}'`);
  return n;
}

export function oneOf<T extends string>(values: readonly T[]): (value: string) => T {
  return (value) => {
    if (!values.includes(value as T)) throw new InvalidArgumentError(`expected one of ${values.join(', ')}, got '${value}'`);
    return value as T;
  };
}

/** A comma-separated list of known names, each checked, duplicates dropped: `--sections a,b`. */
export function listOf<T extends string>(known: readonly T[], what: string): (value: string) => T[] {
  return (value) => {
    const items = value.split(',').map((item) => item.trim());
    for (const item of items) {
      if (!known.includes(item as T)) throw new InvalidArgumentError(`unknown ${what} "${item}" (known: ${known.join(', ')})`);
    }
    return [...new Set(items)] as T[];
  };
}

/** An integer in [min, max]: `--max-concurrent 4`. */
export function integer(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected an integer in ${min}..${max}, got "${value}"`);
    return n;
  };
}

/** A positive number of MiB, as bytes: `--max-upload-mb 20`. */
export function megabytes(value: string): number {
  const n = Number(value);
  if (!(Number.isFinite(n) && n > 0)) throw new InvalidArgumentError(`expected a positive number of MiB, got "${value}"`);
  return Math.round(n * 1024 * 1024);
}
