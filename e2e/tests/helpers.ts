import { expect, type Page, type TestInfo } from "@playwright/test";

export const DEMO_PASSWORD = "warden-demo";

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
