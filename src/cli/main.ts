#!/usr/bin/env node
// The `sim` command.

import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { UsageError } from './errors.js';
import { rawCommand } from './raw.js';
import { bootCommand } from './boot.js';

function fail(msg: string, code = 2): never {
  process.stderr.write(`sim: ${msg}\n`);
  process.exit(code);
}

async function main(): Promise<void> {
  await yargs(hideBin(process.argv))
    .scriptName('sim')
    .command('raw <file>', 'run a flat binary in a flat 64-bit machine and print the final registers as JSON',
      (y) => y
        .positional('file', { type: 'string', demandOption: true, describe: 'flat binary image' })
        .option('base', { type: 'string', demandOption: true, describe: 'load address (hex)' })
        .option('entry', { type: 'string', demandOption: true, describe: 'start address (hex)' })
        .option('memory', { type: 'number', default: 64, describe: 'memory size in MiB' })
        .option('regs', { type: 'string', describe: 'initial registers as JSON, e.g. {"rax":"0x10"}' })
        .option('max-insns', { type: 'number', describe: 'stop after this many instructions' }),
      (a) => { process.exitCode = rawCommand({ file: a.file as string, base: a.base, entry: a.entry, memory: a.memory, regs: a.regs, maxInsns: a['max-insns'] }); })
    .command('boot', 'boot the built-in default guest', (y) => y, () => { process.exitCode = bootCommand(); })
    .demandCommand(1, 'name a command: sim raw | sim boot (see sim --help)')
    .strict()
    .fail((msg, err) => {
      if (err instanceof UsageError) fail(err.message);
      if (err) throw err;
      fail(msg);
    })
    .help()
    .parseAsync();
}

main().catch((e: unknown) => {
  if (e instanceof UsageError) fail(e.message);
  fail(`internal error: ${(e as Error).stack ?? String(e)}`, 70);
});
