// Headless Chromium signs in through real reverse proxies configured as docs/proxy.md says.
// Started by run.sh, which provides:
//
//   PROXY_TEST_NGINX, PROXY_TEST_NGINX_RD, PROXY_TEST_CADDY   the proxies' origins
//   PROXY_TEST_NGINX_LOG, PROXY_TEST_NGINX_RD_LOG, PROXY_TEST_CADDY_LOG   their access logs
//   PROXY_TEST_APP                               the app, directly (its request log)
//   PROXY_TEST_USERNAME, PROXY_TEST_PASSWORD     an account (email alice@example.com, group
//                                                staff); `noemail` has the same password
//   PROXY_TEST_CHROMIUM                          the chromium executable
//   PROXY_TEST_ARTIFACTS                         screenshots of a failing step (optional)
//
// For each proxy, in its own browser context: a visit to a protected app URL goes to the
// sign-in page; the browser's own favicon request (a protected path, so also sent to sign in)
// happens before the form is submitted and must not invalidate it; signing in returns to the
// app URL, which shows the identity headers; forged identity headers never reach the app; an
// account without an email gets no placeholder text; signing out ends access.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

const require = createRequire(new URL('../browser/package.json', import.meta.url));
const { chromium } = require('playwright-core');

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run tests/proxy/run.sh`);
  return value;
}

// `query`: the app URL's query string. nginx's own `return 302` does not percent-encode the
// URL it passes as `rd`, so there it keeps one parameter (docs/proxy.md says so); where
// tessera builds the redirect, a second parameter must survive the round trip.
const PROXIES = [
  { name: 'nginx', base: required('PROXY_TEST_NGINX'), log: required('PROXY_TEST_NGINX_LOG'), query: '?year=2026' },
  {
    name: 'nginx with the tessera-built redirect',
    base: required('PROXY_TEST_NGINX_RD'),
    log: required('PROXY_TEST_NGINX_RD_LOG'),
    query: '?year=2026&team=ops',
  },
  { name: 'caddy', base: required('PROXY_TEST_CADDY'), log: required('PROXY_TEST_CADDY_LOG'), query: '?year=2026&team=ops' },
];
const APP = required('PROXY_TEST_APP');
const USERNAME = required('PROXY_TEST_USERNAME');
const PASSWORD = required('PROXY_TEST_PASSWORD');
const ARTIFACTS = process.env.PROXY_TEST_ARTIFACTS || '';
// Dev mode (plain HTTP on loopback): the cookies have no `__Host-` prefix.
const SESSION_COOKIE = 'tessera';
const LOGIN_COOKIE = 'tessera-login';

let browser;
before(async () => {
  browser = await chromium.launch({
    executablePath: required('PROXY_TEST_CHROMIUM'),
    // No flag that stops the browser's own favicon requests: they are part of the test.
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-sync'],
    headless: true,
    timeout: 30_000,
  });
});
after(async () => {
  await browser?.close();
});

/** The requests the app has received so far. */
async function appRequests() {
  const r = await fetch(`${APP}/__requests`, { headers: { 'x-test-direct': '1' } });
  return r.json();
}

/** Waits (polling, at most `ms`) until `probe()` returns a truthy value, and returns it. */
async function eventually(what, probe, ms = 10_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function logText(file) {
  return existsSync(file) ? readFileSync(file, 'utf8') : '';
}

/** Signs in with the JSON API through the proxy; returns the session cookie pair. */
async function apiSignIn(base, username) {
  const r = await fetch(`${base}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password: PASSWORD }),
  });
  assert.equal(r.status, 200, await r.text());
  const set = r.headers.getSetCookie().find((c) => c.startsWith(`${SESSION_COOKIE}=`));
  assert.ok(set, 'a session cookie');
  return set.split(';')[0];
}

for (const proxy of PROXIES) {
  test(`sign-in through ${proxy.name}`, { timeout: 90_000 }, async (t) => {
    const context = await browser.newContext();
    context.setDefaultTimeout(10_000);
    const page = await context.newPage();
    let broken = false;
    const step = (name, fn) =>
      t.test(name, async (s) => {
        if (broken) return s.skip('an earlier step failed');
        try {
          await fn(s);
        } catch (e) {
          broken = true;
          if (ARTIFACTS) {
            mkdirSync(ARTIFACTS, { recursive: true });
            const file = join(ARTIFACTS, `${proxy.name.replace(/\W+/g, '-')}-${name.replace(/[^a-z0-9]+/gi, '-')}.png`);
            await page.screenshot({ path: file, fullPage: true }).catch(() => {});
          }
          throw e;
        }
      });
    const appUrl = `${proxy.base}/reports/q3${proxy.query}`;
    // The app's log is shared by the proxies: paths of this test's own requests name it.
    const slug = proxy.name.replace(/\W+/g, '-');

    await step('a protected URL sends the browser to the sign-in page', async () => {
      await page.goto(appUrl);
      const url = new URL(page.url());
      assert.equal(url.origin, proxy.base);
      assert.equal(url.pathname, '/login');
      assert.equal(url.searchParams.get('rd'), appUrl, 'rd is the app URL');
      assert.equal(await page.getByRole('button', { name: 'Sign in', exact: true }).count(), 1);
      const before = await appRequests();
      assert.deepEqual(before.filter((r) => !r.identity['x-tessera-user']), [], 'no anonymous request reached the app');
    });

    await step("the browser's own favicon request is sent to sign in too, and the form stays valid", async () => {
      // Chromium asks for /favicon.ico by itself after the page loaded; the proxy sends it to
      // the sign-in page like any protected path, which answers with a sign-in cookie. Wait
      // until that happened (the proxy's access log shows the redirected request).
      await eventually('the favicon request and its redirect to /login', () => {
        const log = logText(proxy.log);
        return /favicon\.ico/.test(log) && /\/login\?rd=[^ "]*favicon\.ico/.test(log);
      });
      const cookies = await context.cookies(proxy.base);
      const held = cookies.find((c) => c.name === LOGIN_COOKIE);
      assert.ok(held, 'a sign-in cookie');
      const inForm = await page.locator('input[name=csrf]').inputValue();
      assert.equal(held.value, inForm, "the favicon's trip to /login replaced the cookie the form needs");
    });

    await step('signing in returns to the app URL, which receives the identity headers', async () => {
      await page.getByLabel('Username', { exact: true }).fill(USERNAME);
      await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
      const [response] = await Promise.all([
        page.waitForResponse((r) => new URL(r.url()).pathname === '/login' && r.request().method() === 'POST'),
        page.getByRole('button', { name: 'Sign in', exact: true }).click(),
      ]);
      const body = response.status() === 303 ? '' : await response.text().catch(() => '');
      assert.equal(response.status(), 303, `POST /login answered ${response.status()} ${body.slice(0, 300)}`);
      await page.waitForURL(appUrl);
      assert.equal(await page.locator('#app').textContent(), 'Protected app');
      assert.equal(await page.locator('#url').textContent(), `/reports/q3${proxy.query}`);
      assert.equal(await page.locator('[id="x-tessera-user"]').textContent(), JSON.stringify(USERNAME));
      assert.equal(await page.locator('[id="x-tessera-email"]').textContent(), JSON.stringify('alice@example.com'));
      assert.equal(await page.locator('[id="x-tessera-groups"]').textContent(), JSON.stringify('staff'));
      const cookie = (await context.cookies(proxy.base)).find((c) => c.name === SESSION_COOKIE);
      assert.ok(cookie?.httpOnly, 'an HttpOnly session cookie');
    });

    await step('every request that reached the app carried the identity of a session', async () => {
      for (const r of await appRequests()) {
        assert.ok(r.identity['x-tessera-user'], `${r.method} ${r.url} reached the app without X-Tessera-User`);
      }
    });

    await step('forged identity headers never reach the app', async () => {
      const forged = { 'x-tessera-user': 'mallory', 'x-tessera-email': 'mallory@evil.example', 'x-tessera-groups': 'admin' };
      const anonymous = await fetch(`${proxy.base}/forged/anonymous/${slug}`, { headers: forged, redirect: 'manual' });
      assert.ok([302, 401].includes(anonymous.status), `anonymous forged request: ${anonymous.status}`);
      const cookie = (await context.cookies(proxy.base)).find((c) => c.name === SESSION_COOKIE);
      const signedIn = await fetch(`${proxy.base}/forged/signed-in/${slug}`, {
        headers: { ...forged, cookie: `${cookie.name}=${cookie.value}` },
        redirect: 'manual',
      });
      assert.equal(signedIn.status, 200);
      const seen = await appRequests();
      assert.equal(seen.filter((r) => r.url === `/forged/anonymous/${slug}`).length, 0);
      const mine = seen.filter((r) => r.url === `/forged/signed-in/${slug}`);
      assert.equal(mine.length, 1);
      assert.deepEqual(mine[0].identity, {
        'x-tessera-user': USERNAME,
        'x-tessera-email': 'alice@example.com',
        'x-tessera-groups': 'staff',
      });
    });

    await step('an account without an email: the app gets no email and no placeholder text', async () => {
      const cookie = await apiSignIn(proxy.base, 'noemail');
      const r = await fetch(`${proxy.base}/whoami/noemail/${slug}`, { headers: { cookie } });
      assert.equal(r.status, 200);
      const matching = (await appRequests()).filter((x) => x.url === `/whoami/noemail/${slug}`);
      assert.equal(matching.length, 1);
      const [seen] = matching;
      assert.equal(seen.identity['x-tessera-user'], 'noemail');
      assert.equal(seen.identity['x-tessera-email'] ?? '', '', `X-Tessera-Email: ${JSON.stringify(seen.identity['x-tessera-email'])}`);
      assert.equal(seen.identity['x-tessera-groups'] ?? '', '');
    });

    await step('the account page through the proxy names this browser', async () => {
      await page.goto(`${proxy.base}/account`);
      assert.equal(await page.locator('#who').textContent(), USERNAME);
      const current = page.locator('li.session.current');
      assert.match(await current.textContent(), /Chrome on Linux/);
    });

    await step('signing out ends access to the app', async () => {
      await Promise.all([
        page.waitForURL((u) => u.pathname === '/login'),
        page.getByRole('button', { name: 'Sign out', exact: true }).click(),
      ]);
      await page.goto(appUrl);
      assert.equal(new URL(page.url()).pathname, '/login');
      const r = await fetch(`${proxy.base}/after/sign-out/${slug}`, { redirect: 'manual' });
      assert.ok([302, 401].includes(r.status));
      const seen = await appRequests();
      assert.equal(seen.filter((x) => x.url === `/after/sign-out/${slug}`).length, 0);
    });

    await context.close();
  });
}
