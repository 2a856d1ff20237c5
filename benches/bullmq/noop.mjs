// BullMQ baseline for `genesis bench queue`: N no-op jobs added first, then one Worker with
// the given concurrency and removeOnComplete; prints one JSON line with jobs/s.
// Usage: node noop.mjs <redis-url> <jobs> <concurrency>
import { Queue, Worker } from 'bullmq';

const [, , redisUrl, jobsArg, concArg] = process.argv;
const jobs = Number(jobsArg);
const concurrency = Number(concArg);
const url = new URL(redisUrl);
const connection = { host: url.hostname, port: Number(url.port || 6379), maxRetriesPerRequest: null };
const name = `genesis-bench-${process.pid}-${Date.now()}`;

const queue = new Queue(name, { connection });
for (let i = 0; i < jobs; i += 1000) {
  const n = Math.min(1000, jobs - i);
  await queue.addBulk(
    Array.from({ length: n }, () => ({ name: 'noop', data: {}, opts: { removeOnComplete: true } })),
  );
}
let done = 0;
const started = performance.now();
await new Promise((resolve) => {
  const worker = new Worker(name, async () => {}, { connection, concurrency, removeOnComplete: { count: 0 } });
  worker.on('completed', () => {
    done += 1;
    if (done === jobs) resolve(worker);
  });
});
const seconds = (performance.now() - started) / 1000;
console.log(JSON.stringify({ jobs, seconds, jobs_per_s: jobs / seconds }));
await queue.obliterate({ force: true });
process.exit(0);
