import { expect, test } from "@playwright/test";
import { startAgent, useAgents } from "./agents";
import { as, expectAccessible, screens, signedIn } from "./helpers";

// Bulk response actions (issue 16): hosts picked in the Fleet view, one
// command for all of them, and the bulk's page following each host live.

useAgents();

test("a bulk isolate of 5 hosts picked in the Fleet view shows each host's progress until all 5 succeeded", async ({ page, request, baseURL }, testInfo) => {
  test.setTimeout(90_000);
  const prefix = `bulk-${testInfo.project.name}-${Date.now().toString(36)}`;
  const agents = await Promise.all([1, 2, 3, 4, 5].map((n) => startAgent(request, baseURL!, `${prefix}-${n}`)));

  await signedIn(page, "manager");
  await page.goto(`fleet?q=${prefix}`);
  const table = page.getByTestId("agents");
  for (const agent of agents) {
    await table.getByRole("checkbox", { name: `Select ${agent.hostname}` }).check();
  }
  await expect(page.getByTestId("selected-count")).toHaveAttribute("data-count", "5");
  await expectAccessible(page, testInfo, "fleet with hosts selected");

  await page.getByTestId("bulk-open").click();
  const dialog = page.getByTestId("bulk-dialog");
  await expect(dialog.getByRole("heading", { name: "Response action for 5 hosts" })).toBeVisible();
  await dialog.getByLabel("Command").selectOption("isolate");
  await dialog.getByLabel("Comment (optional)").fill("e2e: contain five hosts");
  await expectAccessible(page, testInfo, "bulk send dialog, its form");
  await dialog.getByRole("button", { name: "Check hosts" }).click();
  // The confirmation states the count before anything is sent.
  const preview = dialog.getByTestId("bulk-preview");
  await expect(preview).toHaveAttribute("data-eligible", "5");
  await expect(preview).toHaveAttribute("data-refused", "0");
  await expect(preview).toContainText("goes to 5 hosts of the 5 selected");
  await expectAccessible(page, testInfo, "bulk send dialog");
  await screens(page, testInfo, "bulk-dialog");
  await dialog.getByTestId("bulk-send").click();

  // The bulk's page: every host counted, live, until all five answered.
  await expect(page).toHaveURL(/\/response-actions\/bulk\/[0-9a-f-]+$/);
  await expect(page.getByRole("heading", { name: /Bulk isolate/ })).toBeVisible();
  await expect(page.getByTestId("bulk-count-all")).toHaveAttribute("data-count", "5");
  await expect(page.getByTestId("bulk-count-successful")).toHaveAttribute("data-count", "5", { timeout: 30_000 });
  await expect(page.getByTestId("bulk-count-pending")).toHaveAttribute("data-count", "0");
  await expect(page.getByTestId("bulk-status")).toHaveAttribute("data-status", "successful");
  const rows = page.getByTestId("bulk-hosts").locator('[data-testid="bulk-host"]');
  await expect(rows).toHaveCount(5);
  for (const agent of agents) {
    await expect(page.getByTestId("bulk-hosts").locator(`[data-name="${agent.hostname}"]`)).toContainText("Successful");
  }
  // Nothing left to cancel, and the button says why.
  await expect(page.getByTestId("bulk-cancel")).toBeDisabled();
  await expectAccessible(page, testInfo, "bulk action");
  await screens(page, testInfo, "bulk-action");

  // The address keeps the view: a reload, and a filter by state.
  await page.getByTestId("bulk-count-successful").click();
  await expect(page).toHaveURL(/outcome=successful/);
  await page.reload();
  await expect(page.getByTestId("bulk-count-successful")).toHaveAttribute("aria-pressed", "true");
  await expect(rows).toHaveCount(5);

  // Each host's action is one click away in the history.
  await rows.first().getByRole("link", { name: /in the history/ }).click();
  await expect(page).toHaveURL(/\/response-actions\?agentIds=/);
  await expect(page.locator('[data-testid="ra-row"][data-command="isolate"]').first()).toBeVisible();
});

test("cancel pending hosts stops a long bulk execute on each of them", async ({ page, request, baseURL }, testInfo) => {
  test.setTimeout(90_000);
  const prefix = `bulk-cancel-${testInfo.project.name}-${Date.now().toString(36)}`;
  const agents = await Promise.all([1, 2].map((n) => startAgent(request, baseURL!, `${prefix}-${n}`)));
  const response = await request.post("internal/warden/response_actions/bulk", {
    headers: as("manager"),
    data: { command: "execute", agents: agents.map((a) => a.id), parameters: { command: "sleep 60", timeout: 120 } },
  });
  expect(response.ok(), await response.text()).toBeTruthy();
  const bulk = (await response.json()) as { bulkId: string };

  await signedIn(page, "manager");
  await page.goto(`response-actions/bulk/${bulk.bulkId}`);
  await expect(page.getByTestId("bulk-count-pending")).toHaveAttribute("data-count", "2");
  await page.getByTestId("bulk-cancel").click();
  const confirm = page.getByRole("dialog", { name: "Cancel the pending hosts?" });
  await expect(confirm).toContainText("2 hosts still pending");
  await expectAccessible(page, testInfo, "bulk cancel dialog");
  await confirm.getByRole("button", { name: "Cancel pending hosts" }).click();
  await expect(page.getByTestId("toast").filter({ hasText: "Cancel sent to 2 pending hosts" })).toBeVisible();
  await expect(page.getByTestId("bulk-count-canceled")).toHaveAttribute("data-count", "2", { timeout: 30_000 });
  await expect(page.getByTestId("bulk-status")).toHaveAttribute("data-status", "failed");
  await expect(page.getByTestId("bulk-hosts")).toContainText("Cancelled by manager");
  await screens(page, testInfo, "bulk-cancelled");
});
