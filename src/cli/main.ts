#!/usr/bin/env node
/**
 * The `flower-native` command. Usage errors (unknown option, bad value, missing argument) print
 * one line and the usage on stderr and exit 2; run-time errors print one line and exit with the
 * status exit-codes.ts gives their error code.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { registerDoctor } from './doctor.js';
import { registerDuplicates } from './duplicates-command.js';
import { registerEval } from './eval-command.js';
import { registerExport } from './export-command.js';
import { EXIT_USAGE, exitCodeFor } from './exit-codes.js';
import { registerIndex } from './index-command.js';
import { registerQuery } from './query-command.js';
import { registerQuantize } from './quantize-command.js';
import { registerServe } from './serve-command.js';
import { registerStatus } from './status-command.js';
import { registerVerify } from './verify-command.js';
import { registerWorker } from './worker-command.js';
import { printable } from './terminal.js';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

const program = new Command('flower-native').description('image similarity search: index a folder of images, query it with images').version(pkg.version);
registerIndex(program);
registerQuery(program);
registerEval(program);
registerDuplicates(program);
registerServe(program);
registerQuantize(program);
registerDoctor(program);
registerVerify(program);
registerWorker(program);
registerStatus(program);
registerExport(program);

/** Every (sub)command: usage errors → one line + usage on stderr, exit 2. */
function strictUsage(command: Command): void {
  command.exitOverride().showHelpAfterError(`usage: ${commandPath(command)} ${command.usage()}`);
  command.commands.forEach(strictUsage);
}
function commandPath(command: Command): string {
  return command.parent ? `${commandPath(command.parent)} ${command.name()}` : command.name();
}
strictUsage(program);

try {
  await program.parseAsync();
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE);
  process.stderr.write(printable(`flower-native: ${err instanceof Error ? err.message : String(err)}\n`));
  if (process.env.FLOWER_NATIVE_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  process.exitCode = exitCodeFor(err);
}
