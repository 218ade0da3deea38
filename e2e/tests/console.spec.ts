import { readFileSync } from "node:fs";
import { expect, test, type Page } from "@playwright/test";
import { send, startAgent, useAgents, type RunningAgent } from "./agents";
import { as, expectAccessible, screens, signedIn } from "./helpers";

useAgents();

/** Opens the agent's console from its row in the Fleet view. */
async function openFromFleet(page: Page, agent: RunningAgent) {
  await page.goto(`fleet?q=${agent.hostname}`);
  await page.getByTestId("agents").getByRole("link", { name: "Console", exact: true }).click();
  await expect(page.getByTestId("console")).toHaveAttribute("data-agent", agent.id);
  await expect(page.locator(".console-host h2")).toHaveText(agent.hostname);
}

/** Types a line on the command line and presses Enter. */
async function run(page: Page, line: string) {
  const input = page.getByLabel("Command");
  await input.fill(line);
  await input.press("Enter");
}

/** The last line of the console whose echo is `input`. */
function entry(page: Page, input: string) {
  return page.getByTestId("console-entry").filter({ has: page.locator(".console-echo code", { hasText: input }) }).last();
}

test("a console opened from the Fleet view: help, an isolation with a comment, the simulator's processes and a kill from its row", async ({ page, request, baseURL }, testInfo) => {
  const agent = await startAgent(request, baseURL!, "console-basics");
  await signedIn(page, "admin");
  await openFromFleet(page, agent);
  await expect(page.getByTestId("console-hint")).toHaveText("Press the up arrow key to access previously entered commands");

  await run(page, "help");
  const help = entry(page, "help").getByTestId("console-help");
  await expect(help.locator('[data-command="isolate"]')).toBeVisible();
  // Nothing is pending here yet: cancel is shown, disabled, with the reason.
  await expect(help).toContainText("cancel");
  await expect(help).toContainText("not available: There is no pending action on this host to cancel");

  await run(page, "isolate --help");
  await expect(entry(page, "isolate --help").getByTestId("console-usage")).toContainText('isolate --comment "isolate this host"');

  await run(page, 'isolate --comment "e2e: contain the host"');
  const isolation = entry(page, "isolate --comment").getByTestId("console-result");
  await expect(isolation).toHaveAttribute("data-outcome", "successful");
  await expect(isolation).toContainText("Action completed.");
  await expect(page.locator(".console-header [data-testid=isolated]")).toBeVisible();

  await run(page, "processes");
  const processes = entry(page, "processes").getByTestId("console-result");
  await expect(processes).toContainText("Action completed.");
  await expect(processes.locator("tbody tr")).toHaveCount(2);
  await expect(processes.locator("tbody tr").first()).toContainText("sleep 86400");
  // A row's Kill puts the command on the line; Enter sends it.
  await processes.locator("tbody tr").first().getByRole("button", { name: "Kill" }).click();
  await expect(page.getByLabel("Command")).toHaveValue(/^kill-process --pid \d+ $/);
  await page.getByLabel("Command").press("Enter");
  await expect(entry(page, "kill-process --pid").getByTestId("console-result")).toContainText("Action completed.");

  // An invalid line is refused in place with Kibana's message, before anything is sent.
  await run(page, "kill-process --pid 1 --entityId abc");
  await expect(entry(page, "kill-process --pid 1 --entityId abc")).toContainText(
    "This command requires only one of the following arguments: --pid, --entityId",
  );
  await screens(page, testInfo, "console");
  await expectAccessible(page, testInfo, "console");

  // The transcript for the case file: every line, who, when, the action and its outcome.
  const [markdown] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Export (Markdown)" }).click()]);
  const text = readFileSync((await markdown.path())!, "utf8");
  expect(text).toContain(`# Response console transcript: ${agent.hostname}`);
  expect(text).toContain('isolate --comment "e2e: contain the host"');
  expect(text).toMatch(/- Status: Successful \(Action completed\.\)/);
  expect(text).toContain("by admin");
  const [json] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Export (JSON)" }).click()]);
  const transcript = JSON.parse(readFileSync((await json.path())!, "utf8"));
  expect(transcript.agentId).toBe(agent.id);
  expect(transcript.entries.find((e: { input: string }) => e.input === "processes").action.outputs[agent.id].content.entries).toHaveLength(2);

  // The console and its lines survive a reload; the tab names the host.
  await page.reload();
  await expect(page.getByTestId("console-tabs").getByRole("link", { name: agent.hostname })).toBeVisible();
  await expect(entry(page, "isolate --comment").getByTestId("console-result")).toContainText("Action completed.");
});

test("a long execute is cancelled from the console's selector, the history agrees, and a recalled cancel says the action is over", async ({ page, request, baseURL }, testInfo) => {
  const agent = await startAgent(request, baseURL!, "console-cancel");
  await signedIn(page, "admin");
  await openFromFleet(page, agent);

  await run(page, 'execute --command "sleep 600" --comment "long one"');
  await expect(entry(page, "sleep 600").getByTestId("console-pending")).toContainText("Action pending.");

  // The selector lists it (pushed by the server, no reload).
  await page.getByLabel("Command").fill("cancel ");
  const popup = page.getByTestId("console-popup");
  await expect(popup.getByRole("option")).toHaveCount(1);
  await expect(popup.getByRole("option").first()).toContainText("execute · admin");
  await expect(popup.getByRole("option").first()).toContainText("long one");

  // Another analyst's action appears in the open selector, and leaves it when it ends.
  const other = await send(request, "t3", "execute", { endpoint_ids: [agent.id], parameters: { command: "sleep 600" }, comment: "from t3" });
  await expect(popup.getByRole("option")).toHaveCount(2);
  await expect(popup.getByRole("option").filter({ hasText: "from t3" })).toContainText("execute · t3");
  await send(request, "t3", "cancel", { endpoint_ids: [agent.id], parameters: { id: other.id } });
  await expect(popup.getByRole("option").filter({ hasText: "from t3" })).toHaveCount(0);
  await expect(popup.getByRole("option")).toHaveCount(1);

  // Enter picks it; the line shows which action the id is.
  await page.getByLabel("Command").press("Enter");
  await expect(page.getByLabel("Command")).toHaveValue(/^cancel --action [0-9a-f-]+ $/);
  await expect(page.getByTestId("console-hint")).toContainText("Cancels execute sent by admin");
  await screens(page, testInfo, "console-selector");
  const line = await page.getByLabel("Command").inputValue();
  const actionId = line.split(" ")[2];
  await page.getByLabel("Command").press("Enter");

  await expect(entry(page, "sleep 600").getByTestId("console-result")).toHaveAttribute("data-outcome", "canceled");
  await expect(entry(page, "sleep 600").getByTestId("console-result")).toContainText("Action canceled.");
  await expect(entry(page, `cancel --action ${actionId}`).getByTestId("console-result")).toContainText("Action completed.");

  // ↑ recalls the cancel: its action is no longer pending, and the console says so instead of sending.
  await page.getByLabel("Command").press("ArrowUp");
  await page.getByPlaceholder("Filter previously entered actions").fill("cancel --action");
  await page.getByPlaceholder("Filter previously entered actions").press("Enter");
  await expect(page.getByLabel("Command")).toHaveValue(`cancel --action ${actionId}`);
  await expect(page.getByTestId("console-hint")).toContainText(`Action ${actionId} (execute) has already been cancelled`);
  await page.getByLabel("Command").press("Enter");
  await expect(page.getByTestId("console-entry").last()).toContainText("has already been cancelled: there is nothing to cancel");

  // The history shows the same outcome the console did (Kibana bug #275346).
  await page.getByTestId("console-history").click();
  const row = page.locator(`[data-testid="ra-row"][data-id="${actionId}"]`);
  await expect(row.locator("td .badge").first()).toHaveText("Cancelled");
});

test("cancel is disabled on a host with nothing pending, and a t2 analyst sees why execute is not allowed", async ({ page, request, baseURL }, testInfo) => {
  const agent = await startAgent(request, baseURL!, "console-t2");
  await signedIn(page, "t2");
  await page.goto(`fleet/agents/${agent.id}`);
  await page.getByTestId("open-console").click();
  await expect(page.getByTestId("console")).toHaveAttribute("data-agent", agent.id);

  await page.getByLabel("Command").fill("cancel");
  await expect(page.getByTestId("console-popup-empty")).toHaveText("There is no pending action on this host to cancel");
  await expect(page.getByTestId("console-hint")).toContainText("Not available: There is no pending action on this host to cancel");
  await page.getByLabel("Command").press("Escape");

  await page.getByLabel("Command").fill('execute --command "ls"');
  await expect(page.getByTestId("console-hint")).toContainText("Not available: execute requires the");
  await page.getByLabel("Command").press("Enter");
  const refused = entry(page, 'execute --command "ls"');
  await expect(refused.locator(".console-error")).toContainText("execute requires the");
  // Nothing was sent.
  const sent = await request.get(`api/endpoint/action?agentIds=${agent.id}`, { headers: as("admin") });
  expect((await sent.json()).total).toBe(0);

  // What a t2 analyst may do, the console does.
  await run(page, "isolate");
  await expect(entry(page, "isolate").getByTestId("console-result")).toContainText("Action completed.");
  await screens(page, testInfo, "console-t2");
});
