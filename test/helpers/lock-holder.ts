/**
 * Child process for the lock tests: takes lock <file> (util/lock.ts), prints "held" (or "busy" when
 * another process has it) and keeps it until it is killed.
 * Usage: node lock-holder.js <file>
 */
import { tryLock } from '../../src/util/lock.js';

const held = tryLock(process.argv[2]) !== undefined;
process.stdout.write(held ? 'held\n' : 'busy\n');
if (held) setInterval(() => undefined, 1000);
