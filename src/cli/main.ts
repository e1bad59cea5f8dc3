#!/usr/bin/env node
// The `sim` command.

import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { UsageError } from './errors.js';
import { rawCommand } from './raw.js';
import { bootCommand } from './boot.js';
import { createCommand, runCommand } from './run.js';

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
    .command('run <kernel>', 'run one PV guest kernel with its console on this terminal',
      (y) => y
        .positional('kernel', { type: 'string', demandOption: true, describe: 'kernel image (ELF, gzip, bzImage)' })
        .option('memory', { type: 'number', describe: 'guest memory in MiB (default 128)' })
        .option('cmdline', { type: 'string', describe: 'kernel command line' })
        .option('ramdisk', { type: 'string', describe: 'initial ramdisk file' })
        .option('max-insns', { type: 'number', describe: 'stop after this many instructions (exit 125)' })
        .option('timeout', { type: 'number', describe: 'stop after this many virtual seconds (exit 124)' })
        .option('verbose', { alias: 'v', type: 'boolean', describe: 'show the hypervisor log on stderr' }),
      async (a) => {
        process.exitCode = await runCommand({ kernel: a.kernel as string, memory: a.memory, cmdline: a.cmdline, ramdisk: a.ramdisk, maxInsns: a['max-insns'], timeout: a.timeout, verbose: a.verbose });
      })
    .command('create <config>', 'create a guest from an xl.cfg file', (y) => y
      .positional('config', { type: 'string', demandOption: true })
      .option('c', { type: 'boolean', describe: 'attach to its console (run it on this terminal)' })
      .option('max-insns', { type: 'number' })
      .option('timeout', { type: 'number' })
      .option('verbose', { alias: 'v', type: 'boolean' }),
    async (a) => {
      process.exitCode = await createCommand(a.config as string, a.c === true, { maxInsns: a['max-insns'], timeout: a.timeout, verbose: a.verbose });
    })
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
