// Signs off a promotion the way an approver does in the Temporal Web UI:
// sign in through the OIDC provider's login page, read the evidence in
// User Metadata, then More Actions → Send a Signal → approve.
// Usage: node webui.mjs '<json>' with
//   {ui, workflowId, user, password, typed, shots, label, [more], [api, token, promotionIds]}
// where typed is the approver name the payload claims (it must not matter)
// and more lists further workflow ids to sign off in the same session.
// With api, token and promotionIds (one per workflow, in order) it waits
// after each signal until the API shows the vote and reports how long that took.
// Prints one JSON line: {"submittedAt": [ms since epoch...], "recordedMs": [...]}.
import { chromium } from 'playwright-core';

const { ui, workflowId, user, password, typed, shots, label, more = [], api, token, promotionIds = [] } = JSON.parse(process.argv[2]);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
const fail = async (msg) => {
  await page.screenshot({ path: `${shots}/${label}-failure.png`, fullPage: true }).catch(() => {});
  console.error(`${label}: ${msg} (at ${page.url()})`);
  await browser.close();
  process.exit(1);
};
const workflowURL = `${ui}/namespaces/default/workflows/${encodeURIComponent(workflowId)}`;

// Sign in: the UI sends people without a session to its login page, which
// hands them to the provider's own login form.
await page.goto(workflowURL);
await page.getByRole('button', { name: 'Continue to SSO' }).or(page.getByRole('link', { name: 'Continue to SSO' }))
  .click({ timeout: 30000 }).catch((e) => fail(`no SSO button: ${e.message}`));
await page.getByLabel('Username').waitFor({ timeout: 30000 }).catch((e) => fail(`no login form: ${e.message}`));
await page.screenshot({ path: `${shots}/${label}-login.png` });
await page.getByLabel('Username').fill(user);
await page.getByLabel('Password').fill(password);
await page.getByRole('button', { name: 'Sign in' }).click();
await page.waitForURL((u) => u.toString().startsWith(ui), { timeout: 30000 }).catch((e) => fail(`not back in the UI: ${e.message}`));
if (!page.url().includes(encodeURIComponent(workflowId))) await page.goto(workflowURL);

// recorded waits until the API lists the signed-in user's vote.
const recorded = async (promotionId) => {
  for (let i = 0; i < 3000; i++) {
    const res = await fetch(`${api}/v1/promotions/${promotionId}`, { headers: { Authorization: `Bearer ${token}` } });
    const p = await res.json();
    if ((p.approvals || []).some((a) => a.approver === user)) return Date.now();
    await new Promise((r) => setTimeout(r, 10));
  }
  await fail(`vote on ${promotionId} never recorded`);
};

// signOff reads the evidence and sends approve on the workflow page that is open.
const signOff = async (n) => {
  // The evidence an approver signs off on.
  await page.getByText('User Metadata').click({ timeout: 30000 }).catch((e) => fail(`no workflow page: ${e.message}`));
  for (const text of ['Validation evidence', 'metric_auc_min', 'How to approve', 'signed-in user']) {
    let shown = false;
    for (let i = 0; i < 60 && !shown; i++) {
      // Markdown details render inside sandboxed iframes: read every frame.
      for (const frame of page.frames()) {
        const body = await frame.locator('body').innerText().catch(() => '');
        if (body.includes(text)) shown = true;
      }
      if (!shown) await page.waitForTimeout(250);
    }
    if (!shown) await fail(`User Metadata does not show "${text}"`);
  }
  await page.screenshot({ path: `${shots}/${label}-evidence-${n}.png`, fullPage: true });

  // The sign-off, with a payload that claims to be someone else.
  await page.getByRole('button', { name: 'More Actions' }).click();
  await page.getByRole('menu').getByText('Send a Signal').click();
  const dialog = page.locator('dialog[open]');
  await dialog.getByTestId('signal-select-button').click();
  const option = dialog.getByRole('option').filter({ hasText: 'approve' }).first();
  const description = await option.innerText();
  if (!description.includes('signed-in user')) await fail(`approve signal lacks its description: ${description}`);
  await option.click();
  const editor = dialog.locator('.cm-content').first();
  await editor.waitFor({ timeout: 10000 });
  await editor.click();
  await page.keyboard.press('Control+A');
  await page.keyboard.press('Delete');
  await editor.fill(JSON.stringify({ approver: typed, decision: 'approve', comment: `signed off in the Web UI by ${user}` }));
  await page.screenshot({ path: `${shots}/${label}-signal-${n}.png` });
  const submit = dialog.getByTestId('confirm-modal-button');
  let submittedAt = 0;
  // Watch for the vote from before the click, so the wait below never adds to it.
  const watching = api ? recorded(promotionIds[n]) : null;
  // The dialog reformats the JSON when the editor loses focus; that can eat the
  // first click, as it would a person's, who then clicks again.
  for (let i = 0; i < 3 && await dialog.count() > 0; i++) {
    submittedAt = Date.now();
    await submit.click({ timeout: 5000 }).catch(() => {});
    await page.waitForTimeout(500);
  }
  if (await dialog.count() > 0) await fail('signal dialog did not close');
  await page.screenshot({ path: `${shots}/${label}-sent-${n}.png`, fullPage: true });
  return { submittedAt, recordedAt: watching ? await watching : 0 };
};

const out = { submittedAt: [], recordedMs: [] };
const ids = [workflowId, ...more];
for (let n = 0; n < ids.length; n++) {
  if (n > 0 || !page.url().includes(encodeURIComponent(ids[n]))) {
    await page.goto(`${ui}/namespaces/default/workflows/${encodeURIComponent(ids[n])}`);
  }
  const { submittedAt, recordedAt } = await signOff(n);
  out.submittedAt.push(submittedAt);
  if (api) out.recordedMs.push(recordedAt - submittedAt);
}
console.log(JSON.stringify(out));
await browser.close();
