// Runs the probe subcommand as the CLI will (`nb-cluster-relay probe …`), for the end-to-end test.
import { runProbeCommand } from '../../../src/probe/probe-command.js';

runProbeCommand(process.argv.slice(2)).then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(2);
  },
);
