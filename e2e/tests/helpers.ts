import AxeBuilder from "@axe-core/playwright";
import { expect, test, type Page, type TestInfo } from "@playwright/test";

export const DEMO_PASSWORD = "warden-demo";

/** The headers of an API call made as a demo user. */
export function as(username: string) {
  return { Authorization: `Basic ${Buffer.from(`${username}:${DEMO_PASSWORD}`).toString("base64")}`, "kbn-xsrf": "e2e" };
}

/**
 * Fails each test of the spec on a panic in the app, even when the page
 * still looks right (call once at the spec's top).
 */
export function failOnPageErrors() {
  let pageErrors: string[] = [];
  test.beforeEach(({ page }) => {
    pageErrors = [];
    page.on("pageerror", (error) => pageErrors.push(error.message));
    page.on("console", (message) => {
      if (message.type() === "error" && message.text().startsWith("panicked at")) pageErrors.push(message.text());
    });
  });
  test.afterEach(() => {
    expect(pageErrors, "errors in the page").toEqual([]);
  });
}

/** Signs in through the login form (the page must show it). */
export async function signIn(page: Page, username: string, password = DEMO_PASSWORD) {
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
}

/** Opens the login page and signs in; waits for the signed-in shell. */
export async function signedIn(page: Page, username: string) {
  await page.goto("login");
  await signIn(page, username);
  await expect(page.getByTestId("user-menu")).toBeVisible();
}

/** Saves a screenshot under test-results/screens/ to look at. */
export async function screenshot(page: Page, testInfo: TestInfo, name: string) {
  await page.screenshot({ path: `test-results/screens/${testInfo.project.name}-${name}.png`, fullPage: true });
}

/** Screenshots of the page as it is, in the dark theme and the light one (the theme is restored after). */
export async function screens(page: Page, testInfo: TestInfo, name: string) {
  const original = await page.locator("html").getAttribute("data-theme");
  for (const theme of ["dark", "light"]) {
    await page.evaluate((value) => (document.documentElement.dataset.theme = value), theme);
    await screenshot(page, testInfo, `${name}-${theme}`);
  }
  await page.evaluate((value) => (document.documentElement.dataset.theme = value), original ?? "dark");
}

/** The WCAG rules every page must pass: 2.0 and 2.1, levels A and AA. */
export const WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"];

type Theme = "dark" | "light";

/**
 * Checks the page as it is now with axe-core against WCAG 2.1 A/AA, in the
 * current theme and then in the other one (the theme is restored after), and
 * fails on any violation with a message naming each rule, what it asks for and
 * the elements that break it. Call it once the page shows what the test is
 * about: it first waits for every loading state to go, so the data is there.
 * `name` labels the message; with `testInfo`, axe's full report of each
 * violation is attached to the test.
 */
export async function expectAccessible(page: Page, testInfo?: TestInfo, name?: string) {
  await expect(page.locator(".state-loading").filter({ visible: true })).toHaveCount(0);
  const label = name ?? new URL(page.url()).pathname;
  const html = page.locator("html");
  const original: Theme = (await html.getAttribute("data-theme")) === "light" ? "light" : "dark";
  const themes: Theme[] = original === "dark" ? ["dark", "light"] : ["light", "dark"];
  const found: string[] = [];
  try {
    for (const theme of themes) {
      await setTheme(page, theme);
      const results = await new AxeBuilder({ page }).withTags(WCAG_TAGS).analyze();
      if (results.violations.length > 0) {
        const body = JSON.stringify({ url: results.url, theme, violations: results.violations }, null, 2);
        await testInfo?.attach(`axe violations on ${label} (${theme})`, { body, contentType: "application/json" });
      }
      for (const violation of results.violations) {
        const nodes = violation.nodes.map((node) => {
          const why = (node.failureSummary ?? "").split("\n").filter((line) => line && !/^Fix (any|all) of the following:$/.test(line.trim()));
          return [`    ${node.target.map(String).join(" >> ")}`, `      ${node.html.slice(0, 160)}`, ...why.map((line) => `      ${line.trim()}`)].join("\n");
        });
        found.push(`[${theme}] ${violation.id} (${violation.impact ?? "?"}): ${violation.help}\n  ${violation.helpUrl}\n${nodes.join("\n")}`);
      }
    }
  } finally {
    await setTheme(page, original);
  }
  expect(found.length, `axe found ${found.length} rule violation(s) on ${label}:\n${found.join("\n")}\n`).toBe(0);
}

/** Switches the theme the way the toggle does, without saving the choice. */
async function setTheme(page: Page, theme: Theme) {
  await page.evaluate((value) => {
    document.documentElement.dataset.theme = value;
  }, theme);
  await expect(page.locator("html")).toHaveAttribute("data-theme", theme);
}
