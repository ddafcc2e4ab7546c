// Preload for profiling the bench's child processes (node refuses --cpu-prof in NODE_OPTIONS):
//   BENCH_CHILD_NODE_OPTIONS="--import ./bench/cpu-profile.mjs" CPU_PROFILE_DIR=/tmp/prof npm run bench:ingest
// Writes <dir>/<role>-<pid>.cpuprofile when the process is told to stop (SIGTERM) or exits.
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';

const dir = process.env.CPU_PROFILE_DIR || '/tmp/meterline-prof';
const role = process.argv[2] ?? 'node';
const session = new Session();
session.connect();
session.post('Profiler.enable');
session.post('Profiler.setSamplingInterval', {
  interval: Number(process.env.CPU_PROFILE_INTERVAL_US || 500),
});
session.post('Profiler.start');

let written = false;
function write() {
  if (written) return;
  written = true;
  // A session on the main thread answers synchronously, so this also works inside 'exit'.
  session.post('Profiler.stop', (err, result) => {
    if (err) return;
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${role}-${process.pid}.cpuprofile`), JSON.stringify(result.profile));
  });
}
process.prependListener('SIGTERM', write);
process.on('exit', write);
