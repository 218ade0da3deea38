import { expect, test } from "@playwright/test";
import { expectAccessible, signedIn } from "./helpers";

// The demo enrollment token that `warden serve --demo` seeds.
const TOKEN = Buffer.from("demo-enrollment:warden-demo-enrollment-secret").toString("base64");

test("the browser's event stream delivers a Fleet event, straight and behind the proxy", async ({ page }, testInfo) => {
  await signedIn(page, "viewer");
  await expect(page.getByTestId("system-status")).toBeVisible();
  await expectAccessible(page, testInfo, "overview");
  const hostname = `sse-${testInfo.project.name}`;
  const result = await page.evaluate(
    async ({ token, hostname }) => {
      // Relative to the page's <base href>, so it is /warden/internal/warden/events behind the proxy.
      const source = new EventSource("internal/warden/events");
      const seen: MessageEvent[] = [];
      let changed = () => {};
      for (const name of ["ready", "reset", "agent_event"]) {
        source.addEventListener(name, (event) => {
          seen.push(event as MessageEvent);
          changed();
        });
      }
      const waitFor = (what: string, match: (event: MessageEvent) => boolean) =>
        new Promise<MessageEvent>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`no ${what} within 15 s; saw ${seen.map((e) => e.type).join(", ")}`)), 15_000);
          const check = () => {
            const found = seen.find(match);
            if (found) {
              clearTimeout(timer);
              resolve(found);
            }
          };
          changed = check;
          check();
        });
      try {
        const ready = await waitFor("ready", (event) => event.type === "ready");
        const response = await fetch("api/fleet/agents/enroll", {
          method: "POST",
          headers: { Authorization: `ApiKey ${token}`, "content-type": "application/json" },
          body: JSON.stringify({ type: "PERMANENT", metadata: { local: { host: { hostname }, elastic: { agent: { version: "8.15.2" } } }, tags: ["e2e"] } }),
        });
        const agentId = (await response.json()).item.id as string;
        const line = await waitFor(`an agent_event for ${agentId}`, (event) => event.type === "agent_event" && JSON.parse(event.data).agent_id === agentId);
        return { url: source.url, status: response.status, readyId: ready.lastEventId, lineId: line.lastEventId, line: JSON.parse(line.data) };
      } finally {
        source.close();
      }
    },
    { token: TOKEN, hostname },
  );
  expect(result.url).toBe(new URL("internal/warden/events", testInfo.project.use.baseURL).href);
  expect(result.status).toBe(200);
  expect(result.line.kind).toBe("enrolled");
  // Ids are `<node>:<sequence>`, the node's own numbering: the browser sends the last one back when it reconnects.
  const [readyNode, readySeq] = result.readyId.split(":");
  const [lineNode, lineSeq] = result.lineId.split(":");
  expect(lineNode).toBe(readyNode);
  expect(Number(lineSeq)).toBeGreaterThan(Number(readySeq));
});
