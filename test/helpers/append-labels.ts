/**
 * A labeling process for the store's crash and concurrency tests:
 *
 *   append-labels.ts FILE PREFIX COUNT [--wait]
 *
 * appends COUNT labels with ids PREFIX-0, PREFIX-1, … to FILE, printing each id only once
 * appendPreference has returned (an acknowledgement). With --wait it prints "ready" and starts
 * when a line arrives on stdin, so several writers can be started together.
 */
import { appendPreference } from '../../src/data/preferences';

async function main(): Promise<void> {
  const [file, prefix, count, wait] = process.argv.slice(2);
  if (wait === '--wait') {
    process.stdout.write('ready\n');
    await new Promise((resolve) => process.stdin.once('data', resolve));
  }
  for (let i = 0; i < Number(count); i++) {
    const id = `${prefix}-${i}`;
    await appendPreference(file, {
      id,
      label: 'a',
      prompt: `Question ${id}?`,
      chosen: ' Yes.',
      rejected: ' No.',
      annotator: prefix,
    });
    process.stdout.write(`${id}\n`);
  }
  process.exit(0);
}

void main();
