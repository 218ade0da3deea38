import { expect, test, type Page } from "@playwright/test";
import { send, startAgent, useAgents } from "./agents";
import { as, expectAccessible, screens, signedIn } from "./helpers";

useAgents();

/** The history's row of one action, and its status badge. */
function rowOf(page: Page, actionId: string) {
  const row = page.locator(`[data-testid="ra-row"][data-id="${actionId}"]`);
  return { row, badge: row.locator("td .badge").first() };
}

test("an isolation sent through the API appears in the open history and turns successful without reload", async ({ page, request, baseURL }, testInfo) => {
  const agent = await startAgent(request, baseURL!, "ra-isolate");
  await signedIn(page, "manager");
  await page.goto(`response-actions?agentIds=${agent.id}`);
  await expect(page.getByRole("heading", { name: "Response actions", exact: true })).toBeVisible();
  await expect(page.getByText("No response action matches these filters.")).toBeVisible();

  const action = await send(request, "manager", "isolate", { endpoint_ids: [agent.id], comment: "e2e: contain the host" });
  const { row, badge } = rowOf(page, action.id);
  await expect(row).toBeVisible();
  await expect(row).toContainText("isolate");
  await expect(row).toContainText(agent.hostname);
  await expect(row).toContainText("e2e: contain the host");
  await expect(badge).toHaveAttribute("data-status", "successful", { timeout: 20_000 });
  await expect(badge).toHaveText("Successful");

  // The filter is in the address: a reload shows the same.
  await page.reload();
  await expect(row).toBeVisible();
  await expect(page.getByTestId("ra-filter-hosts")).toContainText(agent.hostname);

  // A row opens to each host's state, and is reached by keyboard.
  const toggle = row.getByRole("button", { name: `Details of isolate on ${agent.hostname}` });
  await toggle.focus();
  await page.keyboard.press("Enter");
  await expect(toggle).toHaveAttribute("aria-expanded", "true");
  await expect(row.getByTestId("ra-host")).toContainText("Successful");
  await expectAccessible(page, testInfo, "response actions history");
  await screens(page, testInfo, "response-actions");

  // The agent page: isolated, with its recent actions and a way to all of them.
  await row.getByRole("link", { name: agent.hostname }).first().click();
  await expect(page).toHaveURL(new RegExp(`/fleet/agents/${agent.id}$`));
  await expect(page.getByTestId("isolated")).toBeVisible({ timeout: 20_000 });
  await expect(page.getByTestId("recent-actions")).toContainText("isolate");
  await expect(page.getByTestId("pending-actions")).toHaveAttribute("data-count", "0");
  await expectAccessible(page, testInfo, "agent with response actions");
  await screens(page, testInfo, "agent-actions");
  await page.getByRole("link", { name: "Response actions history" }).click();
  await expect(page).toHaveURL(new RegExp(`/response-actions\\?agentIds=${agent.id}$`));
  await expect(row).toBeVisible();
});

test("the history's filters and page live in the address, and all time reaches every earlier day", async ({ page, request, baseURL }) => {
  const agent = await startAgent(request, baseURL!, "ra-filters");
  const action = await send(request, "manager", "running_procs", { endpoint_ids: [agent.id] });
  await signedIn(page, "manager");
  await page.goto(`response-actions?agentIds=${agent.id}&commands=running-processes&statuses=successful&startDate=now-7d`);
  const { row, badge } = rowOf(page, action.id);
  await expect(row).toBeVisible({ timeout: 20_000 });
  await expect(badge).toHaveAttribute("data-status", "successful", { timeout: 20_000 });
  await expect(page.getByTestId("ra-status-successful")).toHaveAttribute("aria-pressed", "true");
  await expect(page.getByTestId("ra-filter-commands")).toContainText("processes");
  await expect(page.getByTestId("ra-period")).toHaveValue("now-7d");

  // The processes it listed, in the opened row.
  await row.getByRole("button", { name: /^Details of processes/ }).click();
  await expect(row.getByRole("region", { name: "Running processes" }).locator("tbody tr").first()).toBeVisible();

  // A status chip and the period change the address; all time sends no start.
  await page.getByTestId("ra-status-successful").click();
  await expect(page).not.toHaveURL(/statuses=/);
  await page.getByTestId("ra-period").selectOption("");
  await expect(page).not.toHaveURL(/startDate=/);
  await expect(row).toBeVisible();

  // A custom range is checked before it is sent.
  await page.getByTestId("ra-period").selectOption("custom");
  await page.getByLabel("From").fill("yesterday");
  await page.getByRole("button", { name: "Apply" }).click();
  await expect(page.locator(".ra-date-error")).toContainText("Invalid date: [yesterday]");
  await page.getByLabel("From").fill("2020-01-01");
  await page.getByRole("button", { name: "Apply" }).click();
  await expect(page).toHaveURL(/startDate=2020-01-01/);
  await expect(row).toBeVisible();
  await page.reload();
  await expect(page.getByLabel("From")).toHaveValue("2020-01-01");
  await expect(row).toBeVisible();
});

test("a long execute is cancelled from the history's dialog and ends failed and cancelled", async ({ page, request, baseURL }, testInfo) => {
  const agent = await startAgent(request, baseURL!, "ra-cancel");
  const action = await send(request, "manager", "execute", { endpoint_ids: [agent.id], parameters: { command: "sleep 60", timeout: 120 } });
  await signedIn(page, "manager");
  await page.goto(`response-actions?agentIds=${agent.id}`);
  const { row, badge } = rowOf(page, action.id);
  await expect(badge).toHaveAttribute("data-status", "pending");
  await expect(row.getByTestId("ra-expires")).toContainText("expires in");

  const cancel = row.getByTestId("ra-cancel");
  await expect(cancel).toBeEnabled();
  await cancel.click();
  const dialog = page.getByTestId("ra-cancel-dialog");
  await expect(dialog).toBeVisible();
  await expect(dialog).toContainText("sleep 60");
  await expect(dialog).toContainText(agent.hostname);
  await expectAccessible(page, testInfo, "cancel dialog");
  await screens(page, testInfo, "cancel-dialog");
  await dialog.getByLabel("Why (optional)").fill("e2e: not needed any more");
  await dialog.getByRole("button", { name: "Cancel action" }).click();
  await expect(dialog).toBeHidden();
  await expect(page.getByTestId("toast")).toContainText("Cancel sent");

  // The original action fails as cancelled, without reload.
  await expect(badge).toHaveAttribute("data-status", "failed", { timeout: 30_000 });
  await expect(badge).toHaveAttribute("data-cancelled", "true");
  await expect(badge).toHaveText("Cancelled");
  await expect(row.getByTestId("ra-cancel")).toHaveCount(0);
  await row.getByRole("button", { name: /^Details of execute/ }).click();
  await expect(row.getByTestId("ra-host")).toContainText("Cancelled by manager");
  await expectAccessible(page, testInfo, "cancelled action");
  await screens(page, testInfo, "response-actions-cancelled");
});

test("a t2 analyst, who may not execute, sees the cancel of an execute disabled with the reason", async ({ page, request, baseURL }, testInfo) => {
  const agent = await startAgent(request, baseURL!, "ra-refused");
  const action = await send(request, "manager", "execute", { endpoint_ids: [agent.id], parameters: { command: "sleep 60", timeout: 120 } });
  await signedIn(page, "t2");
  await page.goto(`response-actions?agentIds=${agent.id}`);
  const { row, badge } = rowOf(page, action.id);
  await expect(badge).toHaveAttribute("data-status", "pending");
  const cancel = row.getByTestId("ra-cancel");
  await expect(cancel).toBeDisabled();
  // The reason shows on keyboard focus, as on hover.
  await row.locator(".tooltip").focus();
  await expect(row.getByRole("tooltip")).toContainText("execute requires the response:execute privilege");
  await expectAccessible(page, testInfo, "cancel refused");
  await screens(page, testInfo, "cancel-refused");

  // Leave nothing running on the shared server.
  await send(request, "manager", "cancel", { endpoint_ids: [agent.id], parameters: { id: action.id } });
});
