/** `rlhf export trl|openrlhf <config>`: the experiment as a folder another trainer launches. */
import * as path from 'path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { t } from '@vscode/l10n';
import { EXPORT_TARGETS, ExportTarget, exportExperiment } from '../export';

const count = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(t('expected a positive integer'));
  return n;
};

export function exportCommand(cli: Command): void {
  cli
    .command('export')
    .description(
      t(
        'write the experiment as a folder for TRL (accelerate, any number of GPUs) or OpenRLHF (PPO, GRPO, RLOO on Ray): data, scripts, README',
      ),
    )
    .addArgument(new Command().createArgument('<target>', t('trl or openrlhf')).choices(EXPORT_TARGETS))
    .argument('<config>', t('experiment config file'))
    .option('--out <dir>', t('folder to write, empty or new (default: .rlhf/exports/<time>-<name>-<target>)'))
    .option('--gpus <n>', t('GPUs per machine'), count, 1)
    .option('--nodes <n>', t('machines'), count, 1)
    .addOption(new Option('--zero <stage>', t('DeepSpeed ZeRO stage (TRL)')).choices(['2', '3']))
    .option('--workspace <dir>', t('the workspace folder the experiment and its data must be inside (default: .)'))
    .action(
      async (
        target: ExportTarget,
        config: string,
        opts: { out?: string; gpus: number; nodes: number; zero?: '2' | '3'; workspace?: string },
      ) => {
        const { dir, bundle } = await exportExperiment({
          target,
          config: path.resolve(config),
          workspace: path.resolve(opts.workspace ?? '.'),
          layout: { gpus: opts.gpus, nodes: opts.nodes, zero: opts.zero ? (Number(opts.zero) as 2 | 3) : undefined },
          out: opts.out,
        });
        console.log(t('exported to {0}', dir));
        for (const line of bundle.launch) console.log(`  ${line}`);
        if (bundle.unmapped.length)
          console.log(t('{0} settings did not carry over; README.md lists them', bundle.unmapped.length));
      },
    );
}
