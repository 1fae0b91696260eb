// Drives modelplane's own web console through a promotion as people do:
// alice requests a canary from the model page and keeps its page open; carol
// reads the inbox and the promotion with JavaScript off; bob approves from his
// inbox; alice's page follows the rollout live, and a drift signal rolls it
// back; audrey verifies the audit chain. Every console page is screenshotted
// at 1280 px and at 390 px (a phone) and checked with axe-core (WCAG 2 A/AA).
// Usage: node console.mjs '<json>' with
//   {api, model, version, target, steps, bake, monitor, comment, shots,
//    users: {alice: {password, token}, bob: {password}, carol: {password}, audrey: {password}}}
// where alice's token reports the drift through the API.
// Progress goes to stderr; the result is one JSON line on stdout (see Go's consoleResult).
import { chromium } from 'playwright-core';
import { AxeBuilder } from '@axe-core/playwright';

const cfg = JSON.parse(process.argv[2]);
const { api, model, version, target, steps, bake, monitor, comment, shots, users } = cfg;
const started = Date.now();
const log = (...a) => console.error(`[console.mjs +${((Date.now() - started) / 1000).toFixed(1)}s]`, ...a);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const desktop = { width: 1280, height: 900 };
const phone = { width: 390, height: 844 };
const open = []; // [label, page] of every page, for failure screenshots

const out = {
  promotionId: '', requestNotice: '', approveNotice: '',
  live: { status: '', stages: [], statuses: [], refreshes: 0, refreshedAttr: '', urlBefore: '', urlAfter: '', marker: '', navigations: -1, liveStatus: '', rollbackCause: '', chartPaths: 0, chartDesc: '', chartLast: {}, trafficNow: '' },
  noJS: { inboxRow: false, stage: '', voteForm: false, liveStatus: '', refreshed: null },
  verify: '', provenance: '', deployment: '',
  pages: [], // {page, url, status, error}
  shots: [],
  overflow: [], // {page, width, scrollWidth}
  axe: [], // {page, width, violations: [{id, impact, help, nodes: [{target, html}]}]}
};

const fail = async (msg) => {
  for (const [label, page] of open) {
    await page.screenshot({ path: `${shots}/console-failure-${label}.png`, fullPage: true }).catch(() => {});
  }
  console.error(`console.mjs: ${msg}`);
  for (const [label, page] of open) console.error(`  ${label} at ${page.isClosed() ? '(closed)' : page.url()}`);
  console.log(JSON.stringify(out));
  await browser.close().catch(() => {});
  process.exit(1);
};
const step = async (what, fn) => {
  try {
    return await fn();
  } catch (e) {
    return fail(`${what}: ${e.message}`);
  }
};

// signIn opens path in a new page of ctx; the console sends the browser to
// the OIDC provider's login form, and back to path once signed in.
const signIn = async (ctx, user, path) => step(`${user} signs in`, async () => {
  const page = await ctx.newPage();
  open.push([user, page]);
  await page.goto(api + path);
  await page.getByLabel('Username').waitFor({ timeout: 30000 });
  await page.getByLabel('Username').fill(user);
  await page.getByLabel('Password').fill(users[user].password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((u) => u.toString().startsWith(api + path), { timeout: 30000 });
  const who = await page.locator('header .who').innerText();
  if (!who.includes(user)) throw new Error(`header names ${JSON.stringify(who)}, not ${user}`);
  log(`${user} signed in, at ${page.url()}`);
  return page;
});

// visit opens a console page and records its status.
const visit = async (page, name, path) => step(`open ${name}`, async () => {
  const res = await page.goto(api + path);
  const status = res ? res.status() : 0;
  if (status !== 200) throw new Error(`${path}: HTTP ${status}: ${await page.locator('main').innerText().catch(() => '')}`);
});

// capture screenshots the open page at both widths and runs axe-core on each.
const capture = async (page, name) => step(`capture ${name}`, async () => {
  const error = await page.locator('main .error').allInnerTexts();
  out.pages.push({ page: name, url: page.url(), error: error.join(' ') });
  for (const vp of [desktop, phone]) {
    await page.setViewportSize(vp);
    const file = `${shots}/console-${name}-${vp.width}.png`;
    await page.screenshot({ path: file, fullPage: true });
    out.shots.push(file);
    const w = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }));
    if (w.scroll > w.client) out.overflow.push({ page: name, width: vp.width, scrollWidth: w.scroll });
    const res = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa']).analyze();
    out.axe.push({
      page: name, width: vp.width,
      violations: res.violations.map((v) => ({
        id: v.id, impact: v.impact, help: v.help,
        nodes: v.nodes.slice(0, 5).map((n) => ({ target: n.target.join(' '), html: n.html.slice(0, 200) })),
      })),
    });
  }
  await page.setViewportSize(desktop);
  log(`captured ${name}`);
});

// untilRow reloads an inbox until the promotion's row is there.
const untilRow = async (page, id) => {
  for (let i = 0; i < 60; i++) {
    if (await page.locator(`#inbox-${id}`).count() > 0) return true;
    await page.waitForTimeout(500);
    await page.reload();
  }
  return false;
};

const ctxOf = (opts = {}) => browser.newContext({ viewport: desktop, ...opts });

// --- alice requests a canary from the model page ---
const alice = await signIn(await ctxOf(), 'alice', `/models/${model}`);
await capture(alice, 'model');
await step('fill the promotion form', async () => {
  await alice.locator('#p-version').selectOption(version);
  await alice.locator('#p-target').selectOption(target);
  await alice.locator('#p-strategy').selectOption('canary');
  await alice.locator('#p-steps').fill(steps);
  await alice.locator('#p-bake').fill(bake);
  await alice.locator('#p-monitor').fill(monitor);
  await alice.locator('#p-timeout').fill('1h');
  await alice.getByRole('button', { name: 'Request promotion' }).click();
  await alice.waitForURL((u) => /^\/promotions\/[^/]+$/.test(u.pathname), { timeout: 30000 }).catch(async (e) => {
    throw new Error(`${e.message}; the page says: ${(await alice.locator('main .error').allInnerTexts()).join(' ') || 'no error'}`);
  });
});
const id = decodeURIComponent(new URL(alice.url()).pathname.split('/')[2]);
out.promotionId = id;
out.requestNotice = await alice.locator('main .notice').innerText().catch(() => '');
log(`promotion ${id} requested: ${out.requestNotice}`);

// The page is live once the stream says so; it then waits for a vote.
await step('alice\'s page goes live, awaiting approval', async () => {
  await alice.locator('#live-status', { hasText: 'Live: this page updates by itself.' }).waitFor({ timeout: 30000 });
  const awaiting = alice.locator('#stage', { hasText: 'awaiting approval' });
  await awaiting.waitFor({ timeout: 30000 }).catch(async () => {
    log('stage not awaiting approval yet: reloading once, before the live checks start');
    await alice.reload();
    await awaiting.waitFor({ timeout: 30000 });
  });
});
// From here on the page must change by itself: a marker in the window and
// the URL survive only if it is never reloaded or navigated.
out.live.urlBefore = alice.url();
let navigations = 0;
alice.on('framenavigated', (f) => { if (f === alice.mainFrame()) navigations++; });
await alice.evaluate(() => {
  window.__consoleMarker = 'set before the approval';
  const main = document.getElementById('main');
  const text = (id) => { const e = document.getElementById(id); return e ? e.textContent.trim() : ''; };
  window.__stages = [text('stage')];
  window.__statuses = [text('status')];
  window.__refreshes = 0;
  new MutationObserver((muts) => {
    for (const m of muts) if (m.type === 'attributes' && m.attributeName === 'data-refreshed') window.__refreshes++;
    for (const [list, id] of [[window.__stages, 'stage'], [window.__statuses, 'status']]) {
      const v = text(id);
      if (v && list[list.length - 1] !== v) list.push(v);
    }
  }).observe(main, { childList: true, subtree: true, characterData: true, attributes: true, attributeFilter: ['data-refreshed'] });
});

// --- carol, with JavaScript off, reads the inbox and the promotion ---
const carolCtx = await ctxOf({ javaScriptEnabled: false });
const carol = await signIn(carolCtx, 'carol', '/inbox');
await step('carol (no JavaScript) reads the inbox and the promotion', async () => {
  out.noJS.inboxRow = await untilRow(carol, id);
  await carol.screenshot({ path: `${shots}/console-nojs-inbox-1280.png`, fullPage: true });
  await visit(carol, 'promotion without JavaScript', `/promotions/${id}`);
  out.noJS.stage = (await carol.locator('#stage').innerText()).trim();
  out.noJS.voteForm = await carol.locator(`form[action="/promotions/${id}/approvals"] button[value=approve]`).count() === 1;
  out.noJS.liveStatus = (await carol.locator('#live-status').innerText()).trim();
  out.noJS.refreshed = await carol.locator('main').getAttribute('data-refreshed');
  await carol.screenshot({ path: `${shots}/console-nojs-promotion-1280.png`, fullPage: true });
  out.shots.push(`${shots}/console-nojs-inbox-1280.png`, `${shots}/console-nojs-promotion-1280.png`);
});
await carolCtx.close();

// --- bob approves from his inbox, with a comment ---
const bob = await signIn(await ctxOf(), 'bob', '/inbox');
await step('bob finds the promotion in his inbox', async () => {
  if (!await untilRow(bob, id)) throw new Error(`no row inbox-${id}`);
});
await capture(bob, 'inbox');
await step('bob approves', async () => {
  const row = bob.locator(`#inbox-${id}`);
  // The inbox refreshes itself; the comment must still be there when Approve is pressed.
  for (let i = 0; i < 5; i++) {
    await row.getByLabel('Comment').fill(comment);
    if (await row.getByLabel('Comment').inputValue() === comment) break;
  }
  await row.getByRole('button', { name: 'Approve' }).click();
  await bob.waitForURL((u) => u.pathname === `/promotions/${id}`, { timeout: 30000 });
  out.approveNotice = await bob.locator('main .notice').innerText().catch(() => '');
  log(`bob: ${out.approveNotice}`);
});

// --- alice's page follows the rollout; drift during monitoring rolls it back ---
await step('alice\'s page reaches monitoring by itself', async () => {
  await alice.locator('#stage', { hasText: 'monitoring' }).waitFor({ timeout: 120000 });
});
log('monitoring: reporting drift');
await step('report drift', async () => {
  const res = await fetch(`${api}/v1/signals/drift`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${users.alice.token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ model, target, version, metric: 'psi', score: 0.9, source: 'drift-monitor' }),
  });
  const body = await res.text();
  if (res.status !== 202 || !body.includes('"kind":"promotion"')) throw new Error(`drift: HTTP ${res.status} ${body}`);
});
await step('alice\'s page shows the rollback and its cause', async () => {
  await alice.locator('#status', { hasText: 'rolled back' }).waitFor({ timeout: 90000 });
  await alice.locator('#rollback-cause').waitFor({ timeout: 30000 });
  await alice.locator('#stage', { hasText: 'done' }).waitFor({ timeout: 30000 });
  const l = out.live;
  l.status = (await alice.locator('#status').innerText()).trim();
  l.rollbackCause = (await alice.locator('#rollback-cause').innerText()).trim();
  l.stages = await alice.evaluate(() => window.__stages);
  l.statuses = await alice.evaluate(() => window.__statuses);
  l.refreshes = await alice.evaluate(() => window.__refreshes);
  l.marker = await alice.evaluate(() => window.__consoleMarker || '');
  l.refreshedAttr = await alice.locator('main').getAttribute('data-refreshed') || '';
  l.urlAfter = alice.url();
  l.navigations = navigations;
  l.liveStatus = (await alice.locator('#live-status').innerText()).trim();
  l.chartPaths = await alice.locator('main svg[role=img] path').count();
  l.chartDesc = await alice.locator('main svg[role=img] desc').textContent().catch(() => '');
  // Where each version's line ends: the chart's last word on the traffic.
  l.chartLast = Object.fromEntries(await alice.locator('main svg[role=img] path[data-version]').evaluateAll(
    (ps) => ps.map((p) => [p.getAttribute('data-version'), Number(p.getAttribute('data-last'))])));
  l.trafficNow = (await alice.locator('#traffic-now').innerText()).trim();
  log(`alice's page: stages ${l.stages.join(' → ')}; ${l.refreshes} refreshes; ${l.rollbackCause}`);
});

// --- every page alice reads, at both widths, checked with axe ---
await visit(alice, 'promotion', `/promotions/${id}`);
await capture(alice, 'promotion');
await visit(alice, 'promotions', '/promotions');
await capture(alice, 'promotions');
await visit(alice, 'deployments', '/deployments');
await capture(alice, 'deployments');
await visit(alice, 'deployment', `/deployments/${encodeURIComponent(target)}/${encodeURIComponent(model)}`);
out.deployment = await alice.locator('main .card', { hasText: `${model} on ${target}` }).innerText().catch(() => '');
await capture(alice, 'deployment');
await visit(alice, 'models', '/models');
await capture(alice, 'models');
await visit(alice, 'provenance', `/models/${encodeURIComponent(model)}/versions/${encodeURIComponent(version)}/provenance`);
out.provenance = await alice.locator('main').innerText();
await capture(alice, 'provenance');

// --- audrey verifies the chain ---
const audrey = await signIn(await ctxOf(), 'audrey', '/audit');
await capture(audrey, 'audit');
await step('audrey verifies the hash chain', async () => {
  await audrey.getByRole('link', { name: 'Verify the hash chain' }).click();
  await audrey.waitForURL((u) => u.pathname === '/audit/verify', { timeout: 30000 });
  out.verify = (await audrey.locator('#verify-result').innerText({ timeout: 30000 })).trim();
  log(`audrey: ${out.verify}`);
});
await capture(audrey, 'verify');
await visit(audrey, 'scorecard', '/scorecard');
await capture(audrey, 'scorecard');
await visit(audrey, 'mcp', '/mcp');
await capture(audrey, 'mcp');

console.log(JSON.stringify(out));
await browser.close();
