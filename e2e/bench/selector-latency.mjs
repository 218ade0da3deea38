// Benchmark (not a test) for docs/perf.md: the time from another analyst's
// POST of an action to its row in an open console's cancel selector, in
// headless Chromium against a running Warden (scripts/bench-console.sh
// starts one, with a simulated agent). Prints p50/p95/max over ROUNDS.
import { chromium } from "@playwright/test";

const [base, agentId] = process.argv.slice(2);
const rounds = Number(process.env.ROUNDS ?? 30);
const auth = (user) => ({
  Authorization: `Basic ${Buffer.from(`${user}:warden-demo`).toString("base64")}`,
  "kbn-xsrf": "bench",
  "content-type": "application/json",
});
const post = async (user, route, body) => {
  const response = await fetch(`${base}api/endpoint/action/${route}`, { method: "POST", headers: auth(user), body: JSON.stringify(body) });
  if (!response.ok) throw new Error(`${route}: ${response.status} ${await response.text()}`);
  return (await response.json()).data;
};

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: ["--no-sandbox"] });
const page = await browser.newPage();
await page.goto(`${base}login`);
await page.getByLabel("Username").fill("admin");
await page.getByLabel("Password").fill("warden-demo");
await page.getByRole("button", { name: "Sign in" }).click();
await page.getByTestId("user-menu").waitFor();
await page.goto(`${base}console/${agentId}`);
await page.getByLabel("Command").fill("cancel ");
await page.getByTestId("console-popup").waitFor();

const times = [];
for (let i = 0; i < rounds; i++) {
  const comment = `bench-${i}`;
  const option = page.getByRole("option").filter({ hasText: comment });
  const started = performance.now();
  const action = await post("t3", "execute", { endpoint_ids: [agentId], parameters: { command: "sleep 600" }, comment });
  await option.waitFor({ timeout: 10_000 });
  times.push(performance.now() - started);
  await post("t3", "cancel", { endpoint_ids: [agentId], parameters: { id: action.id } });
  await option.waitFor({ state: "detached", timeout: 20_000 });
}
await browser.close();
times.sort((a, b) => a - b);
const at = (q) => times[Math.min(times.length - 1, Math.floor(q * times.length))].toFixed(0);
console.log(`POST → row in an open selector, ${rounds} rounds: p50 ${at(0.5)} ms, p95 ${at(0.95)} ms, max ${times.at(-1).toFixed(0)} ms`);
