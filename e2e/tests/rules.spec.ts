import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { type APIRequestContext, expect, test } from "@playwright/test";
import { expectAccessible, screenshot, signedIn } from "./helpers";

/** The demo policy's enrollment token (`warden serve --demo`). */
const DEMO_TOKEN = "ZGVtby1lbnJvbGxtZW50OndhcmRlbi1kZW1vLWVucm9sbG1lbnQtc2VjcmV0";

/** A webhook receiver on 127.0.0.1: the bodies Warden sends it, in order. */
async function receiver() {
  const bodies: string[] = [];
  const server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => (body += chunk));
    request.on("end", () => {
      bodies.push(body);
      response.end("ok");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/hook`, bodies, close: () => server.close() };
}

/** An agent that enrolls and checks in, as warden-agent would. */
async function enrollAgent(request: APIRequestContext, hostname: string) {
  const enrolled = await request.post("api/fleet/agents/enroll", {
    headers: { Authorization: `ApiKey ${DEMO_TOKEN}` },
    data: { type: "PERMANENT", metadata: { local: { host: { hostname }, elastic: { agent: { version: "8.15.2" } } }, tags: ["e2e"] } },
  });
  expect(enrolled.ok()).toBeTruthy();
  const { item } = await enrolled.json();
  const auth = { Authorization: `ApiKey ${item.access_api_key}` };
  const checkin = await request.post(`api/fleet/agents/${item.id}/checkin`, { headers: auth, data: { status: "online", message: "Running", poll_timeout: "1s" } });
  expect(checkin.ok()).toBeTruthy();
  return {
    id: item.id as string,
    uninstall: async () => {
      const response = await request.post(`api/fleet/agents/${item.id}/audit/unenroll`, {
        headers: auth,
        data: { reason: "uninstall", timestamp: new Date().toISOString() },
      });
      expect(response.ok()).toBeTruthy();
    },
  };
}

test("build the compliance rule in the form: an uninstall reaches the webhook and opens a case", async ({ page }, testInfo) => {
  const hook = await receiver();
  try {
    await signedIn(page, "manager");
    const connector = await page.request.post("api/actions/connector", {
      headers: { "kbn-xsrf": "e2e" },
      data: { name: `Compliance hook ${testInfo.project.name}`, connector_type_id: ".webhook", config: { url: hook.url, method: "post", hasAuth: false } },
    });
    expect(connector.ok()).toBeTruthy();
    const connectorName = `Compliance hook ${testInfo.project.name}`;

    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Rules" }).click();
    await page.getByRole("link", { name: "Create rule" }).click();
    await expect(page).toHaveURL(/\/rules\/new$/);

    // Saving an empty form shows each error next to its field.
    await page.getByRole("button", { name: "Create rule" }).click();
    await expect(page.getByText("[request body.name]: must be 1 to 256 characters")).toBeVisible();

    const ruleName = `Endpoint protection removed ${testInfo.project.name}`;
    await page.getByLabel("Name").fill(ruleName);
    await expect(page.getByLabel(" Uninstalled")).toBeChecked();
    await expect(page.getByLabel(" Detached Endpoint")).toBeChecked();

    // A connector and the cases system action, picked from one list.
    const picker = page.getByLabel("Add an action");
    await picker.selectOption({ label: `${connectorName} — Webhook` });
    await page.getByRole("button", { name: "Add", exact: true }).click();
    await picker.selectOption({ label: "Cases — system action" });
    await page.getByRole("button", { name: "Add", exact: true }).click();
    const editors = page.getByTestId("action-editor");
    await expect(editors).toHaveCount(2);
    // The webhook has timing options; the system action never does.
    await expect(editors.nth(0).getByTestId("execution-options")).toBeVisible();
    await expect(editors.nth(1).getByTestId("execution-options")).toHaveCount(0);
    await expect(editors.nth(1).getByLabel("How often")).toHaveCount(0);
    // A system action already added cannot be picked again, and says why.
    const cases = picker.locator("option", { hasText: "Cases — system action" });
    await expect(cases).toBeDisabled();
    await expect(cases).toHaveAttribute("title", "Already added: a system action can be used once per rule");
    await expectAccessible(page, testInfo, "rule form");
    await screenshot(page, testInfo, "rule-form");

    await page.getByRole("button", { name: "Create rule" }).click();
    await expect(page).toHaveURL(/\/rules\/(?!new$)[^/]+$/);
    await expect(page.getByRole("heading", { name: ruleName })).toBeVisible();

    // The uninstall: the rule runs at once and the webhook hears it.
    const agent = await enrollAgent(page.request, `pos-${testInfo.project.name}`);
    await agent.uninstall();
    // Other specs' agents (the server is shared) may be uninstalled too: find this one's call.
    const ours = () => hook.bodies.map((body) => JSON.parse(body)).find((body) => body.agent === agent.id);
    await expect.poll(ours, { timeout: 20_000 }).toBeTruthy();
    expect(ours()).toEqual({ agent: agent.id, host: `pos-${testInfo.project.name}`, status: "uninstalled", rule: ruleName });

    await page.getByRole("tab", { name: "Alerts" }).click();
    const alert = page.getByTestId("rule-alerts").getByRole("row").filter({ hasText: `pos-${testInfo.project.name}` });
    await expect(alert.getByRole("link", { name: `pos-${testInfo.project.name}` })).toBeVisible();
    await expect(alert.getByRole("link", { name: "case" })).toBeVisible();
    await page.getByRole("tab", { name: "Action log" }).click();
    await expect(page.getByTestId("rule-actions")).toContainText("succeeded");
    await expect(page.getByTestId("rule-actions")).toContainText("system-connector-.cases");
    await page.getByRole("tab", { name: "Runs" }).click();
    await expect(page.getByTestId("rule-runs")).toContainText("an agent changed");
    await expectAccessible(page, testInfo, "rule runs");
    await screenshot(page, testInfo, "rule-runs");
  } finally {
    hook.close();
  }
});

test("a viewer sees rules read-only; without cases:all the cases system action is not offered", async ({ page }, testInfo) => {
  await signedIn(page, "viewer");
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Rules" }).click();
  await expect(page.getByRole("heading", { name: "Rules" })).toBeVisible();
  await expect(page.getByRole("link", { name: "Create rule" })).toHaveCount(0);
  await expectAccessible(page, testInfo, "rules as viewer");

  // A platform engineer may write rules but not open cases.
  await page.getByTestId("user-menu").click();
  await page.getByRole("button", { name: "Sign out" }).click();
  await signedIn(page, "platform");
  await page.goto("rules/new");
  const picker = page.getByLabel("Add an action");
  await expect(picker.locator("option", { hasText: "Warden log" })).toHaveCount(1);
  await expect(picker.locator("option", { hasText: "— system action" })).toHaveCount(0);
});
