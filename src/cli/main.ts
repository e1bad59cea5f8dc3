#!/usr/bin/env node
// The `sim` command.

import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { UsageError } from './errors.js';
import { xenstoreLs, xenstoreRead, xenstoreRm, xenstoreVerb, xenstoreWrite } from './xenstore.js';
import { statePaths } from '../xen/hostd/statedir.js';
import { rawCommand } from './raw.js';
import { bootCommand } from './boot.js';
import { runCommand } from './run.js';
import { bootDaemon, bootForeground, consoleVerb, createVerb, dmesgVerb, domainVerb, infoVerb, listVerb, shutdownVerb } from './verbs.js';
import { DEFAULT_HOST_MEMORY_MIB } from '../xen/hostd/host.js';

const stateDirOpt = { type: 'string', describe: 'the host\'s state directory (default $XENSIM_STATE_DIR or ~/.xensim/host)' } as const;

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
        .option('vcpus', { type: 'number', describe: 'virtual CPUs (default 1)' })
        .option('max-insns', { type: 'number', describe: 'stop after this many instructions (exit 125)' })
        .option('timeout', { type: 'number', describe: 'stop after this many virtual seconds (exit 124)' })
        .option('verbose', { alias: 'v', type: 'boolean', describe: 'show the hypervisor log on stderr' }),
      async (a) => {
        process.exitCode = await runCommand({ kernel: a.kernel as string, vcpus: a.vcpus, memory: a.memory, cmdline: a.cmdline, ramdisk: a.ramdisk, maxInsns: a['max-insns'], timeout: a.timeout, verbose: a.verbose });
      })
    .command('create <config>', 'create a guest from an xl.cfg file', (y) => y
      .positional('config', { type: 'string', demandOption: true })
      .option('c', { type: 'boolean', describe: 'attach to its console (without a running host: run it on this terminal)' })
      .option('p', { type: 'boolean', describe: 'leave it paused (sim unpause starts it)' })
      .option('state-dir', { type: 'string', describe: 'the host\'s state directory (default $XENSIM_STATE_DIR or ~/.xensim/host)' })
      .option('max-insns', { type: 'number' })
      .option('timeout', { type: 'number' })
      .option('verbose', { alias: 'v', type: 'boolean' }),
    async (a) => {
      process.exitCode = await createVerb({ config: a.config as string, console: a.c === true, paused: a.p === true, stateDir: a['state-dir'], maxInsns: a['max-insns'], timeout: a.timeout, verbose: a.verbose });
    })
    .command('boot', 'boot the built-in default host (two domains); with --foreground or --daemon, start a host for sim create/list/console/...', (y) => y
      .option('foreground', { type: 'boolean', describe: 'run a host in this process until ^C (prints the hypervisor log)' })
      .option('daemon', { type: 'boolean', describe: 'start a host in the background and return once it answers' })
      .option('state-dir', { type: 'string', describe: 'the host\'s state directory (default $XENSIM_STATE_DIR or ~/.xensim/host)' })
      .option('memory', { type: 'number', describe: `host memory in MiB (default ${DEFAULT_HOST_MEMORY_MIB})` })
      .option('clock', { type: 'string', choices: ['realtime', 'virtual'], describe: 'idle time passes in real time (default) or is skipped' })
      .option('detached-child', { type: 'boolean', hidden: true })
      .option('raw', { type: 'boolean', describe: 'run the old flat-binary demo instead of the default host' })
      .option('verbose', { alias: 'v', type: 'boolean', describe: 'the default host: show the hypervisor log on stderr' }),
    async (a) => {
      const host = a.foreground === true || a.daemon === true;
      if (!host) {
        if (a['state-dir'] !== undefined || a.memory !== undefined || a.clock !== undefined) throw new UsageError('--state-dir, --memory and --clock start a host: add --foreground or --daemon');
        process.exitCode = await bootCommand({ raw: a.raw === true, verbose: a.verbose === true });
        return;
      }
      if (a.raw || a.verbose) throw new UsageError('--raw and --verbose are for the default host (sim boot without --foreground or --daemon)');
      if (a.foreground && a.daemon) throw new UsageError('choose one of --foreground and --daemon');
      const args = { stateDir: a['state-dir'], memory: a.memory, clock: a.clock, detachedChild: a['detached-child'] === true };
      process.exitCode = a.daemon ? await bootDaemon(args) : await bootForeground(args);
    })
    .command('list [domains..]', 'list the domains of the running host (xl list)', (y) => y
      .positional('domains', { type: 'string', array: true, describe: 'names or IDs (default: all)' })
      .option('state-dir', stateDirOpt),
    async (a) => { process.exitCode = await listVerb({ stateDir: a['state-dir'], domains: a.domains as string[] | undefined }); })
    .command('console <domain>', 'attach to a domain\'s console (^] detaches)', (y) => y
      .positional('domain', { type: 'string', demandOption: true })
      .option('state-dir', stateDirOpt),
    async (a) => { process.exitCode = await consoleVerb({ stateDir: a['state-dir'], domain: a.domain as string }); })
    .command('shutdown <domain>', 'ask a domain to power off', (y) => y
      .positional('domain', { type: 'string', demandOption: true })
      .option('w', { type: 'boolean', describe: 'wait until it has shut down' })
      .option('state-dir', stateDirOpt),
    async (a) => { process.exitCode = await shutdownVerb({ stateDir: a['state-dir'], domain: a.domain as string, wait: a.w === true }); })
    .command('reboot <domain>', 'ask a domain to reboot', (y) => y
      .positional('domain', { type: 'string', demandOption: true })
      .option('w', { type: 'boolean', describe: 'wait until it has shut down' })
      .option('state-dir', stateDirOpt),
    async (a) => { process.exitCode = await shutdownVerb({ stateDir: a['state-dir'], domain: a.domain as string, wait: a.w === true, reboot: true }); })
    .command('destroy <domain>', 'stop a domain at once and free its memory', (y) => y
      .positional('domain', { type: 'string', demandOption: true }).option('state-dir', stateDirOpt),
    async (a) => { process.exitCode = await domainVerb('destroy', { stateDir: a['state-dir'], domain: a.domain as string }); })
    .command('pause <domain>', 'stop running a domain\'s vCPUs', (y) => y
      .positional('domain', { type: 'string', demandOption: true }).option('state-dir', stateDirOpt),
    async (a) => { process.exitCode = await domainVerb('pause', { stateDir: a['state-dir'], domain: a.domain as string }); })
    .command('unpause <domain>', 'let a paused domain run again', (y) => y
      .positional('domain', { type: 'string', demandOption: true }).option('state-dir', stateDirOpt),
    async (a) => { process.exitCode = await domainVerb('unpause', { stateDir: a['state-dir'], domain: a.domain as string }); })
    .command('info', 'show the running host (xl info)', (y) => y.option('state-dir', stateDirOpt),
      async (a) => { process.exitCode = await infoVerb({ stateDir: a['state-dir'] }); })
    .command('dmesg', 'show the hypervisor log (xl dmesg)', (y) => y
      .option('c', { type: 'boolean', describe: 'clear it after printing' }).option('state-dir', stateDirOpt),
    async (a) => { process.exitCode = await dmesgVerb({ stateDir: a['state-dir'], clear: a.c === true }); })
    .command('xenstore-ls [path]', 'list the running host\'s xenstore tree', (y) => y.option('state-dir', stateDirOpt),
      async (a) => { process.exitCode = await xenstoreVerb(() => xenstoreLs(statePaths(a['state-dir']).xenstoreSocket, (a.path as string | undefined) ?? '/')); })
    .command('xenstore-read <paths..>', 'print xenstore values', (y) => y.option('state-dir', stateDirOpt),
      async (a) => { process.exitCode = await xenstoreVerb(() => xenstoreRead(statePaths(a['state-dir']).xenstoreSocket, a.paths as string[])); })
    .command('xenstore-write <pairs..>', 'write xenstore values (PATH VALUE ...)', (y) => y.option('state-dir', stateDirOpt),
      async (a) => { process.exitCode = await xenstoreVerb(() => xenstoreWrite(statePaths(a['state-dir']).xenstoreSocket, (a.pairs as unknown[]).map(String))); })
    .command('xenstore-rm <paths..>', 'remove xenstore nodes', (y) => y.option('state-dir', stateDirOpt),
      async (a) => { process.exitCode = await xenstoreVerb(() => xenstoreRm(statePaths(a['state-dir']).xenstoreSocket, a.paths as string[])); })
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
