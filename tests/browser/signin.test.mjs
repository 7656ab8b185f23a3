// A real browser against a real `tessera serve`: headless Debian Chromium driven by
// playwright-core, checked with node:test and node:assert. Started by run.sh, which provides:
//
//   BROWSER_TEST_BASE_URL   http://127.0.0.1:PORT of a fresh dev-mode server
//   BROWSER_TEST_USERNAME   an account in it (group staff)
//   BROWSER_TEST_PASSWORD   its password
//   BROWSER_TEST_CHROMIUM   the chromium executable (default: `which chromium`)
//   BROWSER_TEST_ARTIFACTS  where to put screenshots of a failing step (optional)
//
// The steps share two browser contexts (two "devices") and run in order; once one fails the
// rest are skipped, since each depends on the state the previous ones left.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { chromium } from 'playwright-core';

const BASE = required('BROWSER_TEST_BASE_URL').replace(/\/$/, '');
const ORIGIN = new URL(BASE).origin;
const USERNAME = required('BROWSER_TEST_USERNAME');
const PASSWORD = required('BROWSER_TEST_PASSWORD');
const ARTIFACTS = process.env.BROWSER_TEST_ARTIFACTS || '';
const GENERIC_FAILURE = 'Wrong username or password.';
// Dev mode on loopback: no `__Host-` prefix, no Secure (production: `__Host-tessera`).
const SESSION_COOKIE = 'tessera';
// axe-core, evaluated in the page through the DevTools protocol (the pages' CSP allows no
// script of their own, and none is added to them).
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
// The narrowest common phone viewport the pages must fit without horizontal scrolling.
const PHONE = { width: 390, height: 844 };

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run tests/browser/run.sh`);
  return value;
}

function chromiumPath() {
  if (process.env.BROWSER_TEST_CHROMIUM) return process.env.BROWSER_TEST_CHROMIUM;
  return execFileSync('which', ['chromium'], { encoding: 'utf8' }).trim();
}

let browser;
/** Every URL any page of any context asked for, with the context that asked. */
const requests = [];
const contexts = {};
const pages = {};

async function openContext(name) {
  const context = await browser.newContext({ baseURL: BASE });
  context.setDefaultTimeout(10_000);
  context.setDefaultNavigationTimeout(10_000);
  context.on('request', (r) => requests.push({ context: name, url: r.url() }));
  contexts[name] = context;
  pages[name] = await context.newPage();
  return pages[name];
}

before(async () => {
  browser = await chromium.launch({
    executablePath: chromiumPath(),
    args: CHROMIUM_ARGS,
    headless: true,
    timeout: 30_000,
  });
  await openContext('A');
  await openContext('B');
});

after(async () => {
  await browser?.close();
});

// ---------------------------------------------------------------------------------------------
// Helpers: each one is what a person does, plus the facts a person could not see.

/** The session cookie of a context as the browser stores it, or undefined. */
async function sessionCookie(name) {
  const cookies = await contexts[name].cookies(BASE);
  return cookies.find((c) => c.name === SESSION_COOKIE);
}

/** `GET /auth/verify` from inside the page: the browser attaches its own cookies. */
async function verifyStatus(page) {
  return page.evaluate(async () => {
    const r = await fetch('/auth/verify', { credentials: 'same-origin', cache: 'no-store' });
    return r.status;
  });
}

function pathOf(page) {
  const url = new URL(page.url());
  return url.pathname + url.search;
}

/** Fills the sign-in form and submits it; resolves with the response to the POST. */
async function submitSignIn(page, username, password) {
  await page.getByLabel('Username', { exact: true }).fill(username);
  await page.getByLabel('Password', { exact: true }).fill(password);
  const [response] = await Promise.all([
    page.waitForResponse((r) => new URL(r.url()).pathname === '/login' && r.request().method() === 'POST'),
    page.getByRole('button', { name: 'Sign in', exact: true }).click(),
  ]);
  await page.waitForLoadState('load');
  return response;
}

/** A one-line account of a response, for assertion messages. */
async function describe(response) {
  const body = response.status() >= 300 && response.status() < 400 ? '' : await response.text().catch(() => '');
  const request = response.request();
  const origin = (await request.allHeaders()).origin;
  return `${request.method()} ${new URL(request.url()).pathname} (Origin: ${origin}) answered ${response.status()} ${body.slice(0, 200)}`;
}

/** Opens /account, signs in there, and checks we land on the account page. */
async function signIn(page) {
  await page.goto('/account');
  assert.equal(new URL(page.url()).pathname, '/login', 'a visitor without a session is sent to /login');
  const response = await submitSignIn(page, USERNAME, PASSWORD);
  assert.equal(response.status(), 303, await describe(response));
  await page.waitForURL(`${BASE}/account`);
  assert.equal(await page.locator('#who').textContent(), USERNAME);
}

/** The entries of the sessions list. */
function sessionRows(page) {
  return page.locator('ul.sessions > li');
}

/**
 * Runs axe-core (WCAG 2.x A and AA rules, plus its best practices) on the page in the light
 * and the dark colour scheme, and fails on any violation.
 */
async function assertAccessible(page, what) {
  for (const colorScheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme });
    const violations = await page.evaluate(async (source) => {
      if (!window.axe) (0, eval)(source);
      const result = await window.axe.run(document, { resultTypes: ['violations'] });
      return result.violations.map((v) => ({
        rule: v.id,
        impact: v.impact,
        nodes: v.nodes.map((n) => `${n.target.join(' ')}: ${n.failureSummary.replace(/\s+/g, ' ')}`),
      }));
    }, AXE_SOURCE);
    assert.deepEqual(violations, [], `${what}, ${colorScheme} scheme: axe-core violations`);
  }
  await page.emulateMedia({ colorScheme: null });
}

/** At 390 px wide: no horizontal scrolling, and the content is centred. */
async function assertFitsPhone(page, what) {
  const before = page.viewportSize();
  await page.setViewportSize(PHONE);
  try {
    const layout = await page.evaluate(() => {
      const main = document.querySelector('main').getBoundingClientRect();
      return {
        scrollWidth: document.scrollingElement.scrollWidth,
        left: main.left,
        right: window.innerWidth - main.right,
      };
    });
    assert.ok(layout.scrollWidth <= PHONE.width, `${what}: ${layout.scrollWidth} px wide at ${PHONE.width} px`);
    assert.ok(Math.abs(layout.left - layout.right) <= 1, `${what}: not centred (${layout.left} / ${layout.right})`);
  } finally {
    await page.setViewportSize(before);
  }
  const wide = await page.evaluate(() => {
    const main = document.querySelector('main').getBoundingClientRect();
    return { left: main.left, right: window.innerWidth - main.right };
  });
  assert.ok(Math.abs(wide.left - wide.right) <= 1, `${what}: not centred on a wide screen (${wide.left} / ${wide.right})`);
}

async function assertRefused(name, why) {
  const page = pages[name];
  assert.equal(await verifyStatus(page), 401, `${why}: /auth/verify from context ${name} must be 401`);
  await page.goto('/account');
  assert.equal(pathOf(page), '/login?rd=/account', `${why}: /account in context ${name} must redirect to sign-in`);
  assert.equal(await page.locator('#who').count(), 0, `${why}: no account shown in context ${name}`);
}

// ---------------------------------------------------------------------------------------------

test('sign-in, sessions and sign-out in a real browser', { timeout: 60_000 }, async (t) => {
  let broken = false;
  const step = (name, fn) =>
    t.test(name, async (s) => {
      if (broken) {
        s.skip('an earlier step failed');
        return;
      }
      try {
        await fn(s);
      } catch (e) {
        broken = true;
        if (ARTIFACTS) {
          mkdirSync(ARTIFACTS, { recursive: true });
          for (const [ctx, page] of Object.entries(pages)) {
            const file = join(ARTIFACTS, `${name.replace(/[^a-z0-9]+/gi, '-')}-${ctx}.png`);
            await page.screenshot({ path: file, fullPage: true }).catch(() => {});
          }
        }
        throw e;
      }
    });

  const A = pages.A;
  const B = pages.B;

  await step('/account without a session redirects to the sign-in page', async () => {
    const response = await A.goto('/account');
    assert.equal(pathOf(A), '/login?rd=/account');
    assert.equal(response.status(), 200);
    const first = response.request().redirectedFrom();
    assert.ok(first, 'the page was reached through a redirect');
    assert.equal(new URL(first.url()).pathname, '/account');
    assert.equal(await A.title(), 'Sign in · tessera');
  });

  await step('the sign-in form is labelled, autocompletes and loads nothing from elsewhere', async () => {
    assert.equal(await A.locator('label[for=username]').count(), 1);
    assert.equal(await A.locator('label[for=password]').count(), 1);
    // The labels are wired to the inputs: finding by label name reaches them.
    assert.equal(await A.getByLabel('Username', { exact: true }).getAttribute('id'), 'username');
    assert.equal(await A.getByLabel('Password', { exact: true }).getAttribute('id'), 'password');
    assert.equal(await A.locator('#username').getAttribute('autocomplete'), 'username');
    assert.equal(await A.locator('#password').getAttribute('autocomplete'), 'current-password');
    assert.equal(await A.locator('#password').getAttribute('type'), 'password');
    // Every resource the markup names resolves to our own origin...
    const referenced = await A.evaluate(() =>
      [...document.querySelectorAll('[src], link[href], form[action]')].map(
        (el) => new URL(el.getAttribute('src') ?? el.getAttribute('href') ?? el.getAttribute('action'), document.baseURI).href,
      ),
    );
    assert.ok(referenced.length > 0);
    for (const url of referenced) assert.equal(new URL(url).origin, ORIGIN, `markup references ${url}`);
    // ...and every request the browser actually made went there (checked again at the end).
    assert.ok(requests.length > 0);
    for (const r of requests) assert.equal(new URL(r.url).origin, ORIGIN, `request to ${r.url}`);
    assert.ok(
      requests.some((r) => new URL(r.url).pathname === '/static/tessera.css'),
      'the stylesheet was loaded from the same origin',
    );
  });

  await step('a wrong password shows the generic error and sets no session cookie', async () => {
    const response = await submitSignIn(A, USERNAME, `${PASSWORD}-wrong`);
    assert.equal(response.status(), 401, await describe(response));
    const alert = A.getByRole('alert');
    await alert.waitFor();
    assert.equal((await alert.textContent()).trim(), GENERIC_FAILURE);
    assert.equal(new URL(A.url()).pathname, '/login');
    assert.equal(await A.locator('#username').inputValue(), USERNAME, 'the username is kept');
    assert.equal(await A.locator('#password').inputValue(), '', 'the password is not echoed back');
    assert.equal(await sessionCookie('A'), undefined);
    assert.equal(await verifyStatus(A), 401);
  });

  await step('the sign-in page is accessible in both colour schemes and fits a phone', async () => {
    await assertAccessible(A, 'sign-in page with an error');
    await assertFitsPhone(A, 'sign-in page');
  });

  await step('the configured logo is shown (served by tessera under its CSP)', async () => {
    const logo = A.locator('header.brand img.logo');
    assert.equal(await logo.count(), 1);
    const loaded = await logo.evaluate((img) => img.complete && img.naturalWidth > 0);
    assert.ok(loaded, 'the logo image loaded');
    assert.equal(await A.locator('#product-name').textContent(), 'tessera');
  });

  await step('the right password lands on /account with one session, this one', async () => {
    const response = await submitSignIn(A, USERNAME, PASSWORD);
    assert.equal(response.status(), 303, await describe(response));
    await A.waitForURL(`${BASE}/account`);
    assert.equal(await A.locator('#who').textContent(), USERNAME);
    assert.match(await A.locator('h1').textContent(), /Signed in as alice/);
    const rows = sessionRows(A);
    assert.equal(await rows.count(), 1);
    assert.match(await rows.first().textContent(), /\(this session\)/);
    assert.equal(await verifyStatus(A), 200);
  });

  await step('the session cookie is HttpOnly, SameSite=Lax and host-only', async () => {
    const cookie = await sessionCookie('A');
    assert.ok(cookie, 'session cookie set');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Lax');
    assert.equal(cookie.secure, false, 'dev mode on loopback: no Secure');
    assert.equal(cookie.path, '/');
    assert.equal(cookie.domain, new URL(BASE).hostname, 'host-only (no Domain attribute)');
    const visible = await A.evaluate(() => document.cookie);
    assert.doesNotMatch(visible, /(^|;\s*)tessera=/, 'the session cookie is not readable from scripts');
  });

  await step('forward-auth answers with the identity headers', async () => {
    const headers = await A.evaluate(async () => {
      const r = await fetch('/auth/verify');
      return { status: r.status, user: r.headers.get('x-tessera-user'), email: r.headers.get('x-tessera-email'), groups: r.headers.get('x-tessera-groups') };
    });
    assert.deepEqual(headers, { status: 200, user: USERNAME, email: 'alice@example.com', groups: 'staff' });
  });

  await step('a second browser signs in; the first one then lists two sessions', async () => {
    await signIn(B);
    assert.equal(await sessionRows(B).count(), 2);
    await A.reload();
    const rows = sessionRows(A);
    assert.equal(await rows.count(), 2);
    assert.equal(await rows.filter({ hasText: '(this session)' }).count(), 1);
    assert.notEqual((await sessionCookie('A')).value, (await sessionCookie('B')).value);
  });

  await step('sessions are named by browser and system, with distinct actions', async () => {
    const rows = sessionRows(A);
    for (const row of await rows.all()) {
      const device = (await row.locator('.device').textContent()).trim();
      assert.match(device, /^(Headless )?Chrome on Linux$/, 'a short name, not the raw user agent');
    }
    assert.doesNotMatch(await A.content(), /Mozilla\/5\.0/, 'no raw user-agent string on the page');
    // Ending another session, this session, and all of them are three different buttons.
    const other = rows.filter({ hasNotText: '(this session)' });
    assert.equal(await other.getByRole('button', { name: /^End session/ }).count(), 1);
    assert.equal(await rows.filter({ hasText: '(this session)' }).getByRole('button').count(), 0);
    assert.equal(await A.getByRole('button', { name: 'Sign out', exact: true }).count(), 1);
    assert.equal(await A.getByRole('button', { name: 'Sign out everywhere', exact: true }).count(), 1);
  });

  await step('the account page is accessible in both colour schemes and fits a phone', async () => {
    await assertAccessible(A, 'account page');
    await assertFitsPhone(A, 'account page');
  });

  await step("signing out the other session from the first browser refuses the second", async () => {
    const other = sessionRows(A).filter({ hasNotText: '(this session)' });
    assert.equal(await other.count(), 1);
    const [revoked] = await Promise.all([
      A.waitForResponse((r) => /\/account\/sessions\/[^/]+\/revoke$/.test(new URL(r.url()).pathname)),
      other.getByRole('button', { name: /^End session/ }).click(),
    ]);
    assert.equal(revoked.status(), 303, await describe(revoked));
    await A.waitForURL(`${BASE}/account`);
    const rows = sessionRows(A);
    assert.equal(await rows.count(), 1);
    assert.match(await rows.first().textContent(), /\(this session\)/);
    assert.equal(await verifyStatus(A), 200, 'the first browser is still signed in');
    await assertRefused('B', 'after its session was signed out from A');
  });

  await step('"Sign out" returns to /login and ends the session', async () => {
    const [out] = await Promise.all([
      A.waitForResponse((r) => new URL(r.url()).pathname === '/logout'),
      A.getByRole('button', { name: 'Sign out', exact: true }).click(),
    ]);
    assert.equal(out.status(), 303, await describe(out));
    await A.waitForURL((u) => u.pathname === '/login');
    assert.equal(await A.getByRole('button', { name: 'Sign in', exact: true }).count(), 1);
    assert.equal(await sessionCookie('A'), undefined, 'the cookie is cleared');
    assert.equal(await verifyStatus(A), 401);
  });

  await step('Back and reload after sign-out do not show the account', async (s) => {
    await A.goBack();
    await A.waitForLoadState('load');
    s.diagnostic(`Back went to ${pathOf(A)}`);
    assert.equal(await A.locator('#who').count(), 0, `Back shows no account (at ${pathOf(A)})`);
    await A.goto('/account');
    await A.reload();
    assert.equal(pathOf(A), '/login?rd=/account');
    assert.equal(await A.locator('#who').count(), 0);
    assert.doesNotMatch(await A.content(), /Signed in as/);
  });

  await step('"Sign out everywhere" in one browser refuses both', async () => {
    await signIn(A);
    await signIn(B);
    await A.reload();
    assert.equal(await sessionRows(A).count(), 2);
    const [all] = await Promise.all([
      A.waitForResponse((r) => new URL(r.url()).pathname === '/account/sessions/revoke-all'),
      A.getByRole('button', { name: 'Sign out everywhere' }).click(),
    ]);
    assert.equal(all.status(), 303, await describe(all));
    await A.waitForURL((u) => u.pathname === '/login');
    assert.equal(await sessionCookie('A'), undefined, 'the cookie is cleared');
    await assertRefused('A', 'after sign out everywhere');
    await assertRefused('B', 'after sign out everywhere from A');
  });

  await step('a stale sign-in form shows the sign-in page again with a clear message', async () => {
    const C = await openContext('C');
    await C.goto('/account');
    assert.equal(pathOf(C), '/login?rd=/account');
    // The form's cookie expires (or is cleared) while the page stays open.
    await contexts.C.clearCookies({ name: 'tessera-login' });
    const stale = await submitSignIn(C, USERNAME, PASSWORD);
    assert.equal(stale.status(), 403, await describe(stale));
    assert.match(stale.headers()['content-type'], /^text\/html/);
    assert.equal(pathOf(C), '/login');
    const alert = C.getByRole('alert');
    assert.equal((await alert.textContent()).trim(), 'This sign-in form had expired. Please sign in again.');
    assert.equal(await C.locator('#username').inputValue(), USERNAME, 'the username is kept');
    assert.equal(await sessionCookie('C'), undefined);
    await assertAccessible(C, 'sign-in page for a stale form');
    // The page shown is a working form: signing in now succeeds, back to the original target.
    const ok = await submitSignIn(C, USERNAME, PASSWORD);
    assert.equal(ok.status(), 303, await describe(ok));
    await C.waitForURL(`${BASE}/account`);
  });

  await step('error pages are HTML, accessible and fit a phone', async () => {
    const C = pages.C;
    const response = await C.goto('/no/such/page');
    assert.equal(response.status(), 404);
    assert.match(response.headers()['content-type'], /^text\/html/);
    assert.equal(await C.getByRole('heading', { level: 1 }).textContent(), 'Not found');
    await assertAccessible(C, '404 page');
    await assertFitsPhone(C, '404 page');
    await C.goto('/account');
    await Promise.all([
      C.waitForURL((u) => u.pathname === '/login'),
      C.getByRole('button', { name: 'Sign out', exact: true }).click(),
    ]);
  });

  await step('every request of the whole run stayed on the same origin', async () => {
    const foreign = requests.filter((r) => new URL(r.url).origin !== ORIGIN);
    assert.deepEqual(foreign, []);
  });
});
