import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { expect, test } from "@playwright/test";
import { expectAccessible, screenshot, signedIn } from "./helpers";

/** A webhook receiver on 127.0.0.1: what Warden sends it, in order. */
async function receiver() {
  const received: { headers: IncomingHttpHeaders; body: string }[] = [];
  const server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => (body += chunk));
    request.on("end", () => {
      received.push({ headers: request.headers, body });
      response.setHeader("content-type", "application/json");
      response.end(JSON.stringify({ ok: true, seen: received.length }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/hook`, received, close: () => server.close() };
}

test("create a webhook connector, test it against a receiver, and see it listed; system actions never are", async ({ page }, testInfo) => {
  const hook = await receiver();
  try {
    const name = `SOC hook ${testInfo.project.name}`;
    await signedIn(page, "admin");
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Connectors" }).click();
    const table = page.getByTestId("connectors");
    await expect(table.getByRole("link", { name: "Warden log" })).toBeVisible();
    await expect(table.getByText("Cases")).toHaveCount(0);
    await expectAccessible(page, testInfo, "connectors");

    await page.getByLabel("Name", { exact: true }).fill(name);
    await page.getByLabel("Type").selectOption(".webhook");
    await page.getByLabel("URL").fill(hook.url);
    await page.getByLabel("Headers (Name: value, one per line)").fill("X-Soc: warden");
    await page.getByRole("button", { name: "Create connector" }).click();

    // The new connector opens on its Test tab, with the choice in the URL.
    await expect(page).toHaveURL(/\/connectors\/[^/?]+\?tab=test$/);
    await expect(page.getByRole("heading", { name })).toBeVisible();
    await expect(page.getByRole("tab", { name: "Test" })).toHaveAttribute("aria-selected", "true");
    await page.getByLabel("Body").fill('{"host": "web-01", "note": "from the e2e test"}');
    await page.getByRole("button", { name: "Run" }).click();
    await expect(page.getByTestId("execution-result")).toContainText("Succeeded");
    expect(hook.received).toHaveLength(1);
    expect(hook.received[0].body).toBe('{"host": "web-01", "note": "from the e2e test"}');
    expect(hook.received[0].headers["x-soc"]).toBe("warden");
    await screenshot(page, testInfo, "connector-test");
    await expectAccessible(page, testInfo, "connector test tab");

    // The run is in its execution log.
    await page.getByRole("tab", { name: "Executions" }).click();
    await expect(page.getByTestId("connector-executions")).toContainText("succeeded");
    await expect(page.getByTestId("connector-executions")).toContainText("admin (api)");
    await expectAccessible(page, testInfo, "connector executions tab");

    // Its history says who created it.
    await page.getByRole("tab", { name: "History" }).click();
    await expect(page.getByTestId("connector-history")).toContainText("created: .webhook");
    await page.getByRole("link", { name: "← Connectors" }).click();
    await expect(page.locator(`[data-testid="connector-row"][data-name="${name}"]`)).toBeVisible();
  } finally {
    hook.close();
  }
});

test("a viewer sees the connectors read-only, and live", async ({ page, request }, testInfo) => {
  await signedIn(page, "viewer");
  await page.goto("connectors");
  await expect(page.getByTestId("connectors").getByRole("link", { name: "Warden log" })).toBeVisible();
  await expect(page.getByRole("button", { name: "Create connector" })).toHaveCount(0);

  // An administrator adds one elsewhere: it appears without a reload (connector_changed).
  const name = `Pushed log ${testInfo.project.name}`;
  const created = await request.post("api/actions/connector", {
    headers: { Authorization: `Basic ${Buffer.from("admin:warden-demo").toString("base64")}`, "kbn-xsrf": "e2e" },
    data: { name, connector_type_id: ".server-log" },
  });
  expect(created.ok()).toBeTruthy();
  await expect(page.getByTestId("connectors").getByRole("link", { name })).toBeVisible();
  await page.getByTestId("connectors").getByRole("link", { name: "Warden log" }).click();
  await expect(page.getByText("Editing needs actions:all.")).toBeVisible();
  await expectAccessible(page, testInfo, "connector, read-only");
  await page.getByRole("tab", { name: "Test" }).click();
  await expect(page.getByText("Running a connector needs actions:all.")).toBeVisible();
  await expect(page.getByRole("button", { name: "Run" })).toHaveCount(0);
});
