import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type APIRequestContext, expect, type Page, test, type TestInfo } from "@playwright/test";
import { as, expectAccessible, failOnPageErrors, screens, signedIn } from "./helpers";

failOnPageErrors();

// The emulator's demo AWS principal (crates/cloud-emulator/demo.toml), granted every permission the AWS templates need.
const ROLE_ARN = "arn:aws:iam::123456789012:role/warden-demo";
const EXTERNAL_ID = "warden-demo-external-id";
const ADMIN = as("admin");

/** This project's cloud (its emulator), as serve.sh wrote it. */
function cloud(testInfo: TestInfo) {
  return readFileSync(join(__dirname, "..", ".run", testInfo.project.name, "cloud.url"), "utf8").trim();
}

/** A name no other test or run uses. */
function unique(testInfo: TestInfo, what: string) {
  return `${what} ${testInfo.project.name} ${Date.now().toString(36)}`;
}

async function createConnector(request: APIRequestContext, name: string, roleArn = ROLE_ARN) {
  const response = await request.post("api/fleet/cloud_connectors", {
    headers: ADMIN,
    data: { name, cloudProvider: "aws", vars: { role_arn: roleArn, external_id: { type: "password", value: EXTERNAL_ID } } },
  });
  expect(response.ok(), await response.text()).toBeTruthy();
  return (await response.json()).item as { id: string; name: string };
}

/**
 * An agent policy with an AWS package policy that uses the connector (its
 * CloudTrail template). A disabled one counts as a use, but the verifier
 * task leaves its connector alone: nothing verifies it behind the test's back.
 */
async function useConnector(request: APIRequestContext, connectorId: string, name: string, enabled = true) {
  const policy = await request.post("api/fleet/agent_policies", { headers: ADMIN, data: { name: `${name} policy` } });
  expect(policy.ok(), await policy.text()).toBeTruthy();
  const policyId = (await policy.json()).item.id as string;
  const packagePolicy = await request.post("api/fleet/package_policies", {
    headers: ADMIN,
    data: {
      name: `${name} cloudtrail`,
      policy_ids: [policyId],
      package: { name: "aws", title: "AWS", version: "2.17.0" },
      inputs: [{ type: "aws-cloudtrail", policy_template: "cloudtrail", enabled: true }],
      enabled,
      cloud_connector_id: connectorId,
    },
  });
  expect(packagePolicy.ok(), await packagePolicy.text()).toBeTruthy();
}

// The cloud as serve.sh started it, whatever a test did to it (even one that timed out).
test.afterEach(async ({ request }, testInfo) => {
  await request.post(`${cloud(testInfo)}/_emulator/reset`);
});

function connectorRow(page: Page, name: string) {
  return page.locator(`[data-testid="cloud-connector-row"][data-name="${name}"]`);
}

function permission(page: Page, action: string) {
  return page.locator(`[data-testid="permission"][data-name="${action}"]`);
}

test("create an AWS connector through the form, edit it and keep its secret; the API's refusals show in place", async ({ page, request }, testInfo) => {
  const name = unique(testInfo, "AWS prod");
  await signedIn(page, "admin");
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Fleet" }).click();
  await page.getByRole("navigation", { name: "Fleet" }).getByRole("link", { name: "Cloud connectors" }).click();
  await expect(page).toHaveURL(/\/fleet\/cloud-connectors$/);
  await expect(page.getByRole("heading", { name: "Cloud connectors", level: 1 })).toBeVisible();

  await page.getByRole("button", { name: "New cloud connector" }).click();
  const form = page.getByRole("form", { name: "New cloud connector" });
  // The fields are the provider's (the core's CloudProvider::vars()).
  await form.getByLabel("Provider").selectOption("gcp");
  await expect(form.getByLabel("Service account")).toBeVisible();
  await form.getByLabel("Provider").selectOption("aws");
  await form.getByLabel("Name").fill(name);
  await form.getByLabel("Role ARN").fill(ROLE_ARN);
  await expect(form.getByLabel("External ID (secret)")).toHaveAttribute("type", "password");
  await form.getByLabel("External ID (secret)").fill(EXTERNAL_ID);
  await expectAccessible(page, testInfo, "cloud connector form");
  await screens(page, testInfo, "cloud-connector-form");

  // A role ARN that is not one: the message is the API's own (the form checks with the server's rules first).
  await form.getByLabel("Role ARN").fill("arn:aws:iam::12345:role/short-account");
  const refused = await request.post("api/fleet/cloud_connectors", {
    headers: ADMIN,
    data: { name, cloudProvider: "aws", vars: { role_arn: "arn:aws:iam::12345:role/short-account", external_id: "x" } },
  });
  expect(refused.status()).toBe(400);
  const message = (await refused.json()).message as string;
  expect(message).toContain("must be an IAM role ARN");
  await form.getByRole("button", { name: "Create cloud connector" }).click();
  await expect(form.getByRole("alert")).toHaveText(message);

  await form.getByLabel("Role ARN").fill(ROLE_ARN);
  await form.getByRole("button", { name: "Create cloud connector" }).click();
  await expect(page).toHaveURL(/\/fleet\/cloud-connectors\/[^/?]+$/);
  await expect(page.getByRole("heading", { name, level: 1 })).toBeVisible();
  await expect(page.getByTestId("verification-status")).toHaveAttribute("data-status", "pending");
  await expect(page.locator('[data-var="role_arn"]')).toHaveText(ROLE_ARN);
  await expect(page.locator('[data-var="external_id"]')).toHaveText("stored");
  const id = new URL(page.url()).pathname.split("/").pop() as string;

  // The detail survives a reload: it lives in the URL.
  await page.reload();
  await expect(page.getByRole("heading", { name, level: 1 })).toBeVisible();
  await expectAccessible(page, testInfo, "cloud connector");

  // Edit: the secret field is empty, says it is stored, and is kept when left empty.
  await page.getByRole("tab", { name: "Settings" }).click();
  const edit = page.getByRole("form", { name: "Edit cloud connector" });
  await expect(edit.getByLabel("External ID (secret)")).toHaveValue("");
  await expect(edit.getByLabel("External ID (secret)")).toHaveAttribute("placeholder", "stored — leave empty to keep");
  await expect(edit.getByLabel("Role ARN")).toHaveValue(ROLE_ARN);
  await expectAccessible(page, testInfo, "cloud connector settings");
  await edit.getByLabel("Name").fill(`${name} renamed`);
  await edit.getByRole("button", { name: "Save" }).click();
  await expect(page.getByRole("heading", { name: `${name} renamed`, level: 1 })).toBeVisible();
  await expect(page.locator('[data-var="external_id"]')).toHaveText("stored");
  const stored = await (await request.get(`api/fleet/cloud_connectors/${id}`, { headers: ADMIN })).json();
  expect(stored.item.name).toBe(`${name} renamed`);
  expect(stored.item.vars.external_id).toEqual({ type: "password", value: { isSecretRef: true, id: expect.any(String) } });

  // A refusal only the server can make (the name is taken) shows in place too.
  const other = await createConnector(request, unique(testInfo, "AWS other"));
  await edit.getByLabel("Name").fill(other.name);
  await edit.getByRole("button", { name: "Save" }).click();
  await expect(edit.getByRole("alert")).toHaveText("A cloud connector with this name already exists");

  // Back on the list, the connector is there, pending.
  await page.getByRole("link", { name: "← Cloud connectors" }).click();
  const row = connectorRow(page, `${name} renamed`);
  await expect(row.getByTestId("verification-status")).toHaveText("Pending");
  await expect(row).toContainText("AWS");
  await expectAccessible(page, testInfo, "cloud connectors");
});

// What failed CI once: the analyst left Fleet while it was still reading
// its verifiers, and a cloud connector changed meanwhile. The left page's
// verifier query, kept alive by its agent list waiting on it, ran again and
// read the page's disposed live signal (a panic that kills the app). Here
// that read is held until the page is left and a connector has changed.
test("leaving Fleet while it still loads, then a change: the app keeps working", async ({ page, request }, testInfo) => {
  await signedIn(page, "admin");
  let release = () => {};
  const released = new Promise<void>((resolve) => (release = resolve));
  let asked = () => {};
  const held = new Promise<void>((resolve) => (asked = resolve));
  const policies = /\/api\/fleet\/agent_policies$/;
  await page.route(policies, async (route) => {
    asked();
    await released;
    await route.fulfill({ response: await route.fetch() });
  });
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Fleet" }).click();
  await held;
  await page.getByRole("navigation", { name: "Fleet" }).getByRole("link", { name: "Cloud connectors" }).click();
  await expect(page.getByRole("heading", { name: "Cloud connectors", level: 1 })).toBeVisible();
  // A change the left page followed; the list shows it, so the app has had it.
  const connector = await createConnector(request, unique(testInfo, "AWS late"));
  await expect(connectorRow(page, connector.name)).toBeVisible();

  const late = page.waitForResponse(policies);
  release();
  await late;
  await page.unroute(policies);
  // The app still answers: the form opens, and Fleet shows its agents again.
  await page.getByRole("button", { name: "New cloud connector" }).click();
  await expect(page.getByRole("form", { name: "New cloud connector" })).toBeVisible();
  await page.getByRole("navigation", { name: "Fleet" }).getByRole("link", { name: "Agents" }).click();
  await expect(page.getByRole("group", { name: "Filter by status" })).toBeVisible();
});

test("a viewer sees cloud connectors read-only, and live", async ({ page, request }, testInfo) => {
  const existing = await createConnector(request, unique(testInfo, "AWS seen"));
  await signedIn(page, "viewer");
  await page.goto("fleet/cloud-connectors");
  await expect(connectorRow(page, existing.name)).toBeVisible();
  await expect(page.getByRole("button", { name: "New cloud connector" })).toHaveCount(0);

  // An administrator adds one elsewhere: it appears without a reload (cloud_connector_changed).
  const pushed = await createConnector(request, unique(testInfo, "AWS pushed"));
  await expect(connectorRow(page, pushed.name)).toBeVisible();
  await expectAccessible(page, testInfo, "cloud connectors, read-only");

  await connectorRow(page, existing.name).getByRole("link", { name: existing.name }).click();
  await expect(page.getByRole("heading", { name: existing.name, level: 1 })).toBeVisible();
  await expect(page.getByTestId("verify-now")).toHaveCount(0);
  await expect(page.getByRole("button", { name: "Delete" })).toHaveCount(0);
  await page.getByRole("tab", { name: "Settings" }).click();
  await expect(page.getByText("Changing a cloud connector needs fleet:all.")).toBeVisible();
  await expect(page.getByRole("form", { name: "Edit cloud connector" })).toHaveCount(0);
  await expectAccessible(page, testInfo, "cloud connector, read-only");
});

test("verify now: the verifier shows in Fleet while it works, the connector turns success, and a revoked permission fails it with why", async ({
  page,
  request,
}, testInfo) => {
  test.setTimeout(90_000);
  const emulator = cloud(testInfo);
  const name = unique(testInfo, "AWS verified");
  const connector = await createConnector(request, name);
  await useConnector(request, connector.id, name);
  await signedIn(page, "admin");
  await page.goto(`fleet/cloud-connectors/${connector.id}`);
  await expect(page.getByRole("heading", { name, level: 1 })).toBeVisible();

  // Held at the cloud, the verifier has enrolled and not reported: Fleet shows it as a verifier, not an endpoint.
  expect((await request.post(`${emulator}/_emulator/hold`)).ok()).toBeTruthy();
  await page.getByTestId("verify-now").click();
  await expect(page.getByTestId("verification-status")).toHaveAttribute("data-status", "verifying", { timeout: 20_000 });
  await expect.poll(async () => (await (await request.get(`${emulator}/_emulator/stats`)).json()).waiting, { timeout: 20_000 }).toBeGreaterThan(0);
  await page.getByRole("navigation", { name: "Fleet" }).getByRole("link", { name: "Agents" }).click();
  const verifier = page.getByTestId("agents").getByRole("row").filter({ has: page.getByTestId("verifier-badge") });
  await expect(verifier).toHaveCount(1);
  await expect(verifier).toContainText(/verifier-/);
  await expect(verifier.getByRole("link", { name })).toBeVisible();
  await expect(verifier).toContainText("expires at");
  await expect(verifier.getByRole("link", { name: "Console" })).toHaveCount(0);
  await expect(page.getByTestId("verifier")).toContainText(name);
  await expectAccessible(page, testInfo, "fleet with a verifier");
  await screens(page, testInfo, "fleet-verifier");
  expect((await request.post(`${emulator}/_emulator/release`)).ok()).toBeTruthy();
  // Reported: Warden removes the verifier policy and its agent.
  await expect(verifier).toHaveCount(0, { timeout: 20_000 });

  await page.getByRole("navigation", { name: "Fleet" }).getByRole("link", { name: "Cloud connectors" }).click();
  await expect(connectorRow(page, name).getByTestId("verification-status")).toHaveAttribute("data-status", "success", { timeout: 20_000 });
  await connectorRow(page, name).getByRole("link", { name }).click();
  await expect(page.getByTestId("verification-status")).toHaveText("Success");
  const template = page.locator('[data-testid="template-result"][data-template="cloudtrail"]');
  await expect(template).toContainText(`${name} cloudtrail`);
  await expect(permission(page, "cloudtrail:LookupEvents")).toContainText("granted");
  await expect(permission(page, "cloudtrail:LookupEvents")).toContainText("required");
  await expect(permission(page, "sqs:ReceiveMessage")).toContainText("optional");
  await expectAccessible(page, testInfo, "cloud connector verified");
  await screens(page, testInfo, "cloud-connector-success");

  // The cloud takes a permission away; the next verification finds it and says which.
  const revoked = await request.post(`${emulator}/_emulator/revoke`, { data: { principal: ROLE_ARN, action: "cloudtrail:LookupEvents" } });
  expect(revoked.ok(), await revoked.text()).toBeTruthy();
  await page.getByTestId("verify-now").click();
  await expect(page.getByTestId("verification-status")).toHaveAttribute("data-status", "failed", { timeout: 30_000 });
  await expect(page.getByTestId("failure-reason")).toContainText("cloudtrail:LookupEvents denied (cloudtrail)");
  await expect(permission(page, "cloudtrail:LookupEvents")).toContainText("denied");
  await expect(permission(page, "cloudtrail:LookupEvents")).toContainText("implicitDeny");
  await expect(permission(page, "cloudtrail:DescribeTrails")).toContainText("granted");
  await expect(template).toContainText("required missing");
  await expectAccessible(page, testInfo, "cloud connector failed");
  await screens(page, testInfo, "cloud-connector-failed");

  // The list says so too.
  await page.getByRole("link", { name: "← Cloud connectors" }).click();
  await expect(connectorRow(page, name).getByTestId("verification-status")).toHaveText("Failed");
  await screens(page, testInfo, "cloud-connectors-list");
});

test("delete refuses while package policies use the connector, and offers to detach them", async ({ page, request }, testInfo) => {
  const name = unique(testInfo, "AWS retired");
  const connector = await createConnector(request, name);
  await useConnector(request, connector.id, name, false);
  await signedIn(page, "admin");
  await page.goto(`fleet/cloud-connectors/${connector.id}`);
  await page.getByRole("tab", { name: "Package policies" }).click();
  await expect(page.getByTestId("cloud-connector-usage")).toContainText(`${name} cloudtrail`);

  await page.getByRole("button", { name: "Delete" }).click();
  const dialog = page.getByRole("dialog", { name: "Delete this cloud connector?" });
  await expect(dialog).toContainText("1 package policy uses it");
  await expectAccessible(page, testInfo, "delete cloud connector");
  // Without detaching, the server refuses, and says why, in the dialog.
  await dialog.getByRole("button", { name: "Delete" }).click();
  await expect(dialog.getByRole("alert")).toHaveText(`Cannot delete cloud connector "${name}" as it is being used by 1 package policies`);
  await dialog.getByLabel("Detach the 1 package policy and delete").check();
  await dialog.getByRole("button", { name: "Delete" }).click();
  await expect(page).toHaveURL(/\/fleet\/cloud-connectors$/);
  await expect(page.getByTestId("toast")).toContainText("Cloud connector deleted");
  await expect(connectorRow(page, name)).toHaveCount(0);
});

test("a rule on cloud connector verifications: its own params editor, checked by the core, with its own variables", async ({ page, request }, testInfo) => {
  const connector = await createConnector(request, unique(testInfo, "AWS watched"));
  await signedIn(page, "admin");
  await page.goto("rules/new");
  await page.getByLabel("Rule type").selectOption({ label: "Cloud connector verification" });
  await expect(page.getByRole("heading", { name: "Watch cloud connectors" })).toBeVisible();
  await expect(page.getByRole("heading", { name: "Watch for agents that are" })).toHaveCount(0);
  const ruleName = unique(testInfo, "Cloud permissions lost");
  await page.getByLabel("Name").fill(ruleName);

  // Nothing to alert on: the core's message, next to the editor.
  await page.getByLabel(/A verification fails/).uncheck();
  await page.getByLabel(/A permission granted at the previous verification/).uncheck();
  await page.getByRole("button", { name: "Create rule" }).click();
  await expect(page.getByTestId("verification-error")).toHaveText(
    "[request body.params]: alert on a failed verification (on_failed), a revoked permission (on_revoked), or both",
  );
  await page.getByLabel(/A permission granted at the previous verification/).check();
  await expect(page.getByTestId("verification-error")).toHaveCount(0);

  // Only some connectors: picked from the list.
  await page.getByLabel("Only these:").check();
  await page.getByLabel("Cloud connectors").selectOption({ label: `${connector.name} (AWS)` });

  // An action's variables are this type's.
  await page.getByLabel("Add an action").selectOption({ label: "Warden log — Server log" });
  await page.getByRole("button", { name: "Add", exact: true }).click();
  const variables = page.getByTestId("action-editor").getByLabel("Insert a variable");
  await expect(variables.locator("option", { hasText: "{{context.connector.name}}" })).toHaveCount(1);
  await expect(variables.locator("option", { hasText: "{{context.revoked}}" })).toHaveCount(1);
  await expect(variables.locator("option", { hasText: "{{context.agent.id}}" })).toHaveCount(0);
  await expect(page.getByTestId("action-editor").getByLabel("Message")).toHaveValue(/context\.connector\.name/);
  await expectAccessible(page, testInfo, "verification rule form");
  await screens(page, testInfo, "verification-rule-form");

  await page.getByRole("button", { name: "Create rule" }).click();
  await expect(page.getByRole("heading", { name: ruleName })).toBeVisible();
  const rules = await (await request.get(`api/alerting/rules/_find?search=${encodeURIComponent(ruleName)}`, { headers: ADMIN })).json();
  expect(rules.data[0].rule_type_id).toBe("fleet.cloud_connector_verification");
  expect(rules.data[0].params).toEqual({ connector_ids: [connector.id], on_failed: false, on_revoked: true });

  // Its edit form keeps the type and the params.
  await page.goto(`rules/${rules.data[0].id}/edit`);
  await expect(page.getByLabel("Rule type")).toHaveValue("Cloud connector verification");
  await expect(page.getByLabel("Only these:")).toBeChecked();
  await expect(page.getByLabel(/A verification fails/)).not.toBeChecked();
});
