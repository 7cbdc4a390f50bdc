// One cold start of the Node stand-in: import the handler, give it one event, report when each
// step ended, in seconds of CLOCK_MONOTONIC (the clock Python's time.monotonic() reads on Linux).
const now = () => Number(process.hrtime.bigint()) / 1e9;
const started = now();
const { handler } = await import("./handler.mjs");
const imported = now();
const result = await handler(JSON.parse(process.argv[2]));
const answered = now();
console.log(JSON.stringify({ started, imported, answered, result }));
