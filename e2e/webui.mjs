// Signs off a promotion the way an approver would in the Temporal Web UI:
// read the evidence in User Metadata, then More Actions → Send a Signal → approve.
// Usage: node webui.mjs <ui-url> <workflow-id> <approver> <screenshot-dir>
import { chromium } from 'playwright-core';

const [ui, workflowId, approver, shots] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const fail = async (page, msg) => {
  await page.screenshot({ path: `${shots}/failure.png`, fullPage: true });
  console.error(msg);
  await browser.close();
  process.exit(1);
};
const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
await page.goto(`${ui}/namespaces/default/workflows/${encodeURIComponent(workflowId)}`);

// The evidence an approver signs off on.
await page.getByText('User Metadata').click();
for (const text of ['Validation evidence', 'metric_auc_min', 'How to approve', 'unauthenticated']) {
  let shown = false;
  for (let i = 0; i < 60 && !shown; i++) {
    // Markdown details render inside sandboxed iframes: read every frame.
    for (const frame of page.frames()) {
      const body = await frame.locator('body').innerText().catch(() => '');
      if (body.includes(text)) shown = true;
    }
    if (!shown) await page.waitForTimeout(250);
  }
  if (!shown) await fail(page, `User Metadata does not show "${text}"`);
}
await page.screenshot({ path: `${shots}/evidence.png`, fullPage: true });

// The sign-off.
await page.getByRole('button', { name: 'More Actions' }).click();
await page.getByRole('menu').getByText('Send a Signal').click();
const dialog = page.locator('dialog[open]');
await dialog.getByTestId('signal-select-button').click();
const option = dialog.getByRole('option').filter({ hasText: 'approve' }).first();
const description = await option.innerText();
if (!description.includes('Approve or reject')) await fail(page, `approve signal lacks its description: ${description}`);
await option.click();
const editor = dialog.locator('.cm-content').first();
await editor.waitFor({ timeout: 10000 });
await editor.click();
await page.keyboard.press('Control+A');
await page.keyboard.press('Delete');
await editor.fill(JSON.stringify({ approver, decision: 'approve', comment: 'signed off in the Web UI' }));
await page.screenshot({ path: `${shots}/signal.png` });
const submit = dialog.getByTestId('confirm-modal-button');
// The dialog reformats the JSON when the editor loses focus; that can eat the
// first click, as it would a person's, who then clicks again.
for (let i = 0; i < 3 && await dialog.count() > 0; i++) {
  await submit.click({ timeout: 5000 }).catch(() => {});
  await page.waitForTimeout(1000);
}
if (await dialog.count() > 0) await fail(page, 'signal dialog did not close');
await browser.close();
