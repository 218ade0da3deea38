import { expect, test } from "@playwright/test";
import { DEMO_PASSWORD, expectAccessible, screenshot, signIn, signedIn } from "./helpers";

test("sign in shows the shell with every section for a superuser", async ({ page }, testInfo) => {
  await page.goto("");
  await expect(page).toHaveURL(/\/login$/);
  await screenshot(page, testInfo, "login");
  await expectAccessible(page, testInfo, "login");
  await signIn(page, "admin");
  await expect(page.getByRole("heading", { name: "Welcome, Ada Admin" })).toBeVisible();
  const nav = page.getByRole("navigation", { name: "Main" });
  for (const section of ["Console", "Response actions", "Fleet", "Rules", "Alerts", "Cases", "Connectors", "Tasks"]) {
    await expect(nav.getByRole("link", { name: section })).toBeVisible();
  }
  // Live data from the server, not a placeholder.
  const status = page.getByTestId("system-status");
  await expect(status.getByText("available").first()).toBeVisible();
  await expect(status.getByText(/sqlite/)).toBeVisible();
  await screenshot(page, testInfo, "overview");
  await expectAccessible(page, testInfo, "overview");
});

test("a wrong password is refused in place without saying why", async ({ page }, testInfo) => {
  await page.goto("login");
  await signIn(page, "admin", "not-the-password");
  await expect(page.getByRole("alert")).toHaveText("Invalid username or password");
  await expect(page).toHaveURL(/\/login$/);
  await expectAccessible(page, testInfo, "login with an error");
  // The form stays usable: the right password now works.
  await page.getByLabel("Password").fill(DEMO_PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByTestId("user-menu")).toBeVisible();
});

test("repeated wrong passwords lock the user name and the form says for how long", async ({ page }, testInfo) => {
  await page.goto("login");
  for (let attempt = 0; attempt < 10; attempt++) {
    const answer = page.waitForResponse((r) => r.url().endsWith("/internal/security/login"));
    await signIn(page, "t3", `wrong-${attempt}`);
    expect((await answer).status()).toBe(401);
  }
  // Locked: even the right password waits until the window ends.
  const answer = page.waitForResponse((r) => r.url().endsWith("/internal/security/login"));
  await signIn(page, "t3");
  expect((await answer).status()).toBe(429);
  await expect(page.getByRole("alert")).toHaveText(/^Too many failed sign-in attempts; try again in 15 minutes$/);
  await expect(page).toHaveURL(/\/login$/);
  await screenshot(page, testInfo, "login-throttled");
  await expectAccessible(page, testInfo, "login throttled");
});

test("navigation hides what the role may not open", async ({ page }) => {
  await signedIn(page, "viewer");
  const nav = page.getByRole("navigation", { name: "Main" });
  await expect(nav.getByRole("link", { name: "Fleet" })).toBeVisible();
  await expect(nav.getByRole("link", { name: "Console" })).toHaveCount(0);
});

test("a deep link survives sign-in and reload", async ({ page }, testInfo) => {
  await page.goto("rules?tab=mine");
  await expect(page).toHaveURL(/\/login\?next=%2Frules%3Ftab%3Dmine$/);
  await signIn(page, "author");
  await expect(page).toHaveURL(/\/rules\?tab=mine$/);
  await expect(page.getByRole("heading", { name: "Rules" })).toBeVisible();
  await page.reload();
  await expect(page.getByRole("heading", { name: "Rules" })).toBeVisible();
  await expect(page.getByTestId("user-menu")).toBeVisible();
  await screenshot(page, testInfo, "rules");
  await expectAccessible(page, testInfo, "rules");
});

test("navigating between sections changes the readable URL", async ({ page }) => {
  await signedIn(page, "endpoint_ops");
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Fleet" }).click();
  await expect(page).toHaveURL(/\/fleet$/);
  await expect(page.getByRole("heading", { name: "Fleet" })).toBeVisible();
  await expect(page.getByRole("link", { name: "Fleet" })).toHaveAttribute("aria-current", "page");
});

test("sign out ends the session", async ({ page }, testInfo) => {
  await signedIn(page, "t1");
  await page.getByTestId("user-menu").click();
  await expect(page.getByRole("button", { name: "Sign out" })).toBeVisible();
  await expectAccessible(page, testInfo, "user menu open");
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/login$/);
  await page.goto("fleet");
  await expect(page).toHaveURL(/\/login\?next=%2Ffleet$/);
});

test("unknown pages say so", async ({ page }, testInfo) => {
  await page.goto("no/such/page");
  await expect(page.getByRole("heading", { name: "Page not found" })).toBeVisible();
  await expectAccessible(page, testInfo, "page not found");
});

test("dark by default, light on request, remembered across reload", async ({ page }, testInfo) => {
  await signedIn(page, "manager");
  const html = page.locator("html");
  await expect(html).toHaveAttribute("data-theme", "dark");
  await page.getByRole("button", { name: "Switch to light theme" }).click();
  await expect(html).toHaveAttribute("data-theme", "light");
  await page.reload();
  await expect(html).toHaveAttribute("data-theme", "light");
  await screenshot(page, testInfo, "light");
  // Starts from the saved light theme, checks dark too, and leaves light in place.
  await expectAccessible(page, testInfo, "overview, light saved");
  await expect(html).toHaveAttribute("data-theme", "light");
  expect(await page.evaluate(() => localStorage.getItem("warden-theme"))).toBe("light");
});

test("works at 800 px wide and by keyboard", async ({ page }, testInfo) => {
  await page.setViewportSize({ width: 800, height: 900 });
  await page.goto("login");
  // The username field takes focus once the app has started.
  await expect(page.getByLabel("Username")).toBeFocused();
  await page.keyboard.type("t2");
  await page.keyboard.press("Tab");
  await page.keyboard.type(DEMO_PASSWORD);
  await page.keyboard.press("Enter");
  await expect(page.getByTestId("user-menu")).toBeVisible();
  await expect(page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Console" })).toBeVisible();
  await screenshot(page, testInfo, "narrow");
  await expectAccessible(page, testInfo, "overview at 800 px");
});

test("pages load on demand, and the app is served compressed and cached for good", async ({ page }) => {
  const requested: string[] = [];
  page.on("request", (request) => requested.push(new URL(request.url()).pathname));
  const wasm = page.waitForResponse((response) => response.url().endsWith("/warden-ui_bg.wasm"));
  await page.goto("login");
  const main = await wasm;
  // Chromium asks for br over HTTPS and gzip over plain HTTP, as here.
  expect(await main.headerValue("content-encoding")).toMatch(/^(br|gzip)$/);
  expect(await main.headerValue("cache-control")).toBe("public, max-age=31536000, immutable");
  await signIn(page, "viewer");
  await expect(page.getByRole("heading", { name: "Welcome, Vic Viewer" })).toBeVisible();
  const fleetChunk = (path: string) => /\/app-[0-9a-f]{16}\/split___fleet_route_view_\d+\.wasm$/.test(path);
  expect(requested.filter(fleetChunk)).toEqual([]);

  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Fleet" }).click();
  await expect(page.getByRole("heading", { name: "Fleet", level: 1 })).toBeVisible();
  expect(requested.filter(fleetChunk)).toHaveLength(1);
});
