import { expect, test } from "@playwright/test";
import { expectAccessible, screenshot, signedIn } from "./helpers";

test("a personal API key: create it, call the API with it, invalidate it, and it is refused", async ({ page, request }, testInfo) => {
  const name = `ci-export-${testInfo.project.name}`;
  await signedIn(page, "t2");
  await page.getByTestId("user-menu").click();
  await page.getByRole("link", { name: "API keys" }).click();
  await expect(page).toHaveURL(/\/api-keys$/);
  await expect(page.getByRole("heading", { name: "API keys", level: 1 })).toBeVisible();
  await expectAccessible(page, testInfo, "API keys");

  await page.getByLabel("Name").fill(name);
  await page.getByLabel("Expires after").selectOption("7d");
  await page.getByRole("button", { name: "Create key" }).click();
  const notice = page.getByTestId("new-key");
  await expect(notice).toContainText("will never show it again");
  const encoded = (await page.getByTestId("encoded-key").textContent()) ?? "";
  expect(encoded.length).toBeGreaterThan(20);
  await screenshot(page, testInfo, "api-key-created");
  await expectAccessible(page, testInfo, "API keys, new key shown");

  // A script with the key acts as t2.
  const withKey = { headers: { Authorization: `ApiKey ${encoded}` } };
  const me = await request.get("internal/security/me", withKey);
  expect(me.status()).toBe(200);
  expect((await me.json()).username).toBe("t2");

  await page.getByRole("button", { name: "Done" }).click();
  await expect(notice).toHaveCount(0);
  const row = page.locator(`[data-testid="api-key-row"][data-name="${name}"]`);
  await expect(row.getByTestId("key-state")).toHaveText("active");
  await row.getByRole("button", { name: "Invalidate" }).click();
  const dialog = page.getByRole("dialog");
  await expect(dialog).toContainText(`Invalidate “${name}”?`);
  await expectAccessible(page, testInfo, "API keys, invalidate dialog open");
  await dialog.getByRole("button", { name: "Invalidate" }).click();
  await expect(dialog).toHaveCount(0);
  await expect(row.getByTestId("key-state")).toHaveText("invalidated");
  await screenshot(page, testInfo, "api-key-invalidated");
  await expectAccessible(page, testInfo, "API keys, key invalidated");

  expect((await request.get("internal/security/me", withKey)).status()).toBe(401);
  // The page is a real URL: it survives a reload.
  await page.reload();
  await expect(row.getByTestId("key-state")).toHaveText("invalidated");
});

test("a viewer may not create API keys", async ({ page }, testInfo) => {
  await signedIn(page, "viewer");
  await page.getByTestId("user-menu").click();
  await expect(page.getByRole("link", { name: "API keys" })).toHaveCount(0);
  await page.goto("api-keys");
  await expect(page.getByText("Your roles do not allow API keys")).toBeVisible();
  await expect(page.getByRole("button", { name: "Create key" })).toHaveCount(0);
  await expectAccessible(page, testInfo, "API keys, not allowed");
});

test("the Tasks page shows the invalidation task's runs, and run now runs it again", async ({ page }, testInfo) => {
  await signedIn(page, "platform");
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Tasks" }).click();
  await expect(page).toHaveURL(/\/tasks$/);
  const row = page.getByTestId("task-api_key_invalidation");
  await expect(row).toContainText("API key invalidation");
  await expect(row).toContainText("every 5 min");
  await expect(row.getByTestId("last-result")).toContainText("invalidated");
  const runs = Number(((await row.getByTestId("runs").textContent()) ?? "0").split(" / ")[0]);
  expect(runs).toBeGreaterThanOrEqual(1);
  await screenshot(page, testInfo, "tasks");
  await expectAccessible(page, testInfo, "tasks");

  await row.getByRole("button", { name: "Run API key invalidation now" }).click();
  await expect(row.getByTestId("runs")).toHaveText(new RegExp(`^${runs + 1} / 0$`));
  await expect(row.getByTestId("last-run")).toHaveText(/s ago/);
});

test("a viewer sees the tasks but cannot run them", async ({ page }, testInfo) => {
  await signedIn(page, "viewer");
  await page.goto("tasks");
  await expect(page.getByTestId("task-sessions_cleanup")).toContainText("Expired sessions cleanup");
  await expect(page.getByRole("button", { name: /now$/ })).toHaveCount(0);
  await expectAccessible(page, testInfo, "tasks, read-only");
});
