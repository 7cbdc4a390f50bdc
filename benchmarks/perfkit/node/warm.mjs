// Warm events through the Node stand-in: IN_FLIGHT workers take events until EVENTS are done.
//   node warm.mjs EVENTS IN_FLIGHT [WARMUP]
// Prints latencies (ms), CPU and wall seconds, like warm.py.
import { randomUUID } from "node:crypto";
import { handler } from "./handler.mjs";

const [events, inFlight, warmup = 20] = process.argv.slice(2).map(Number);
const event = () => ({
  version: "0",
  id: randomUUID(),
  "detail-type": "Genesys Interaction Event",
  source: "genesys.cloud",
  time: "2024-06-15T14:32:10Z",
  detail: { interactionId: randomUUID(), externalCustomerId: "CUST-1001" },
});

async function run(count, latencies, statuses) {
  const queue = Array.from({ length: count }, event);
  let next = 0;
  async function worker() {
    while (next < queue.length) {
      const one = queue[next++];
      const started = performance.now();
      let status;
      try {
        status = (await handler(one)).status;
      } catch (error) {
        status = `failed: ${error.message}`;
      }
      latencies.push(performance.now() - started);
      statuses[status] = (statuses[status] || 0) + 1;
    }
  }
  await Promise.all(Array.from({ length: Math.min(inFlight, count) }, worker));
}

await run(Math.max(warmup, inFlight), [], {});
const latencies = [];
const statuses = {};
const cpu = process.cpuUsage();
const wall = performance.now();
await run(events, latencies, statuses);
const wallS = (performance.now() - wall) / 1000;
const used = process.cpuUsage(cpu);
const sorted = [...latencies].sort((a, b) => a - b);
const mid = sorted.length >> 1;
const p50 = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
console.log(JSON.stringify({
  events: latencies.length,
  wall_s: wallS,
  cpu_s: (used.user + used.system) / 1e6,
  p50_ms: p50,
  latencies_ms: latencies,
  statuses,
}));
