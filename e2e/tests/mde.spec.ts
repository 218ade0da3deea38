import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { expect, test, type APIRequestContext } from "@playwright/test";
import { as, expectAccessible, screenshot, signedIn } from "./helpers";

// The MDE emulator (`make build` builds it): Microsoft Defender for Endpoint's API, as an outside system.
const EMULATOR_BIN = path.resolve(__dirname, "../../target/debug/warden-mde-emulator");

type Emulator = { url: string; process: ChildProcess; dir: string };

/** Starts the emulator with one host whose machine actions hang until cancelled. */
async function startEmulator(machine: string): Promise<Emulator> {
  const dir = mkdtempSync(path.join(tmpdir(), "warden-e2e-mde-"));
  const config = path.join(dir, "mde.toml");
  writeFileSync(
    config,
    `tenant_id = "e2e-tenant"\nclient_id = "e2e-client"\nclient_secret = "e2e-secret"\naction_delay = "0s"\n\n` +
      `[[machines]]\nid = "${machine}"\ncomputerDnsName = "${machine}.corp.example"\noutcome = "hang"\n`,
  );
  const process = spawn(EMULATOR_BIN, ["--listen", "127.0.0.1:0", "--config", config], { stdio: ["ignore", "pipe", "ignore"] });
  const lines = createInterface({ input: process.stdout! });
  const url = await new Promise<string>((resolve, reject) => {
    lines.on("line", (line) => line.startsWith("MDE emulator listening on ") && resolve(line.slice("MDE emulator listening on ".length).trim()));
    process.on("exit", () => reject(new Error("the emulator exited")));
  });
  return { url, process, dir };
}

let emulator: Emulator | undefined;
let connectorId: string | undefined;

test.afterEach(async ({ request }) => {
  // The e2e server is shared: leave no MDE connector behind for the specs after this one.
  if (connectorId) {
    await request.delete(`api/actions/connector/${connectorId}`, { headers: as("admin") });
    connectorId = undefined;
  }
  emulator?.process.kill();
  if (emulator) rmSync(emulator.dir, { recursive: true, force: true });
  emulator = undefined;
});

test("an MDE connector is tested from its page, its hosts show in Fleet, and a hanging MDE action is cancelled from the history", async ({ page, request }, testInfo) => {
  const machine = `mde-${testInfo.project.name}-${Date.now().toString(36)}`;
  emulator = await startEmulator(machine);

  // The connector, made in the Connectors page; its Test gets a token from the emulator.
  await signedIn(page, "admin");
  await page.goto("connectors");
  await page.getByLabel("Name", { exact: true }).fill(`MDE ${machine}`);
  await page.getByLabel("Type").selectOption(".microsoft_defender_endpoint");
  await page.getByLabel("Application client ID").fill("e2e-client");
  await page.getByLabel("Tenant ID").fill("e2e-tenant");
  await page.getByLabel("OAuth server URL").fill(emulator.url);
  await page.getByLabel("API URL").fill(emulator.url);
  await page.getByLabel("Client secret").fill("e2e-secret");
  await page.getByRole("button", { name: "Create connector" }).click();
  await expect(page).toHaveURL(/\/connectors\/[^/?]+\?tab=test$/);
  connectorId = new URL(page.url()).pathname.split("/").pop();
  await page.getByRole("button", { name: "Run" }).click();
  await expect(page.getByTestId("execution-result")).toContainText("Succeeded");
  const stats = await (await request.get(`${emulator.url}/_emulator/stats`)).json();
  expect(stats.tokens_issued).toBeGreaterThanOrEqual(1);
  await expectAccessible(page, testInfo, "MDE connector test");

  // Fleet lists the host MDE knows.
  await page.goto("fleet");
  const hosts = page.getByTestId("mde-hosts");
  await expect(hosts).toContainText(`${machine}.corp.example`);
  await expectAccessible(page, testInfo, "fleet with MDE hosts");
  await screenshot(page, testInfo, "fleet-mde-hosts");

  // A hanging isolation on that host, cancelled from the history.
  const sent = await request.post("api/endpoint/action/isolate", {
    headers: as("manager"),
    data: { endpoint_ids: [machine], agent_type: "microsoft_defender_endpoint", comment: "e2e: contain" },
  });
  expect(sent.ok(), await sent.text()).toBeTruthy();
  const action = (await sent.json()).data as { id: string };
  await page.context().clearCookies();
  await signedIn(page, "manager");
  await page.goto(`response-actions?agentIds=${machine}`);
  const row = page.locator(`[data-testid="ra-row"][data-id="${action.id}"]`);
  const badge = row.locator("td .badge").first();
  await expect(badge).toHaveAttribute("data-status", "pending");
  await row.getByTestId("ra-cancel").click();
  const dialog = page.getByTestId("ra-cancel-dialog");
  await expect(dialog).toContainText(`${machine}.corp.example`);
  await dialog.getByRole("button", { name: "Cancel action" }).click();
  await expect(dialog).toBeHidden();
  await expect(badge).toHaveAttribute("data-status", "failed", { timeout: 30_000 });
  await expect(badge).toHaveAttribute("data-cancelled", "true");
  await expectAccessible(page, testInfo, "cancelled MDE action");
  await screenshot(page, testInfo, "mde-cancelled");
});

test("an MDE host's console offers MDE's commands, explains the others, and cancels a hanging isolation from its selector", async ({ page, request }, testInfo) => {
  const machine = `mde-console-${testInfo.project.name}-${Date.now().toString(36)}`;
  emulator = await startEmulator(machine);
  const created = await request.post("api/actions/connector", {
    headers: as("admin"),
    data: {
      name: `MDE ${machine}`,
      connector_type_id: ".microsoft_defender_endpoint",
      config: {
        clientId: "e2e-client",
        tenantId: "e2e-tenant",
        oAuthServerUrl: emulator.url,
        oAuthScope: "https://securitycenter.onmicrosoft.com/windowsatpservice/.default",
        apiUrl: emulator.url,
      },
      secrets: { clientSecret: "e2e-secret" },
    },
  });
  expect(created.ok(), await created.text()).toBeTruthy();
  connectorId = (await created.json()).id;

  // Opened from the Fleet view's MDE hosts.
  await signedIn(page, "manager");
  await page.goto("fleet");
  await page.getByTestId("mde-hosts").getByRole("row").filter({ hasText: machine }).getByRole("link", { name: "Console", exact: true }).click();
  await expect(page.getByTestId("console")).toHaveAttribute("data-agent", machine);
  await expect(page.locator(".console-host h2")).toHaveText(`${machine}.corp.example`);
  const input = page.getByLabel("Command");

  // Kibana's MDE message for a command MDE does not have, before anything is sent.
  await input.fill('execute --command "ls"');
  await expect(page.getByTestId("console-hint")).toHaveText("Support for execute is not currently available for Microsoft Defender for Endpoint.");
  await input.press("Enter");
  await expect(page.getByTestId("console-entry").last()).toContainText("Support for execute is not currently available");

  await input.fill('isolate --comment "e2e: contain"');
  await input.press("Enter");
  await expect(page.getByTestId("console-pending").last()).toContainText("Action pending.");

  // The hanging isolation is in the selector; picking it and Enter cancels it at MDE.
  await input.fill("cancel ");
  await expect(page.getByTestId("console-popup").getByRole("option")).toHaveCount(1);
  await input.press("Enter");
  await expect(page.getByTestId("console-hint")).toContainText("Cancels isolate sent by manager");
  await input.press("Enter");
  const isolation = page.getByTestId("console-entry").filter({ hasText: "e2e: contain" }).getByTestId("console-result");
  await expect(isolation).toHaveAttribute("data-outcome", "canceled", { timeout: 30_000 });
  await expect(isolation).toContainText("Action canceled.");
  await screenshot(page, testInfo, "mde-console");
});
