// Second factors in a real browser: headless Debian Chromium (playwright-core) against a real
// `tessera serve` with a master key. Started by run.sh after signin.test.mjs, with:
//
//   BROWSER_TEST_BASE_URL        http://127.0.0.1:PORT of the dev-mode server
//   BROWSER_TEST_MFA_USERNAME    an account of its own (the sign-in test changes the other one)
//   BROWSER_TEST_MFA_PASSWORD    its password
//   BROWSER_TEST_CHROMIUM        the chromium executable
//   BROWSER_TEST_ARTIFACTS       where to put screenshots of a failing step (optional)
//
// The user enrols an authenticator app from the account page (QR code and key shown, first
// code confirms), signs out, signs in with the password and a code computed here from the key
// the page showed (RFC 6238 with node:crypto: this test is the authenticator), and sees the
// same code refused the second time.

import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { chromium } from 'playwright-core';

const BASE = required('BROWSER_TEST_BASE_URL').replace(/\/$/, '');
const USERNAME = required('BROWSER_TEST_MFA_USERNAME');
const PASSWORD = required('BROWSER_TEST_MFA_PASSWORD');
const ARTIFACTS = process.env.BROWSER_TEST_ARTIFACTS || '';
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run tests/browser/run.sh`);
  return value;
}

/** RFC 4648 base32 (no padding) to bytes. */
function base32(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  const out = [];
  for (const c of text.replace(/[\s=]/g, '').toUpperCase()) {
    const i = alphabet.indexOf(c);
    assert.ok(i >= 0, `not base32: ${c}`);
    value = (value << 5) | i;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** The RFC 6238 code (SHA-1, 6 digits, 30 s) of `key` for time step `step`. */
function totp(key, step) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac('sha1', key).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const n = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return String(n).padStart(6, '0');
}

let browser;
let context;
let page;

before(async () => {
  const executablePath =
    process.env.BROWSER_TEST_CHROMIUM || execFileSync('which', ['chromium'], { encoding: 'utf8' }).trim();
  browser = await chromium.launch({
    executablePath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-sync'],
    headless: true,
    timeout: 30_000,
  });
  context = await browser.newContext({ baseURL: BASE });
  context.setDefaultTimeout(10_000);
  page = await context.newPage();
});

after(async () => {
  await browser?.close();
});

async function assertAccessible(what) {
  const violations = await page.evaluate(async (source) => {
    if (!window.axe) (0, eval)(source);
    const result = await window.axe.run(document, { resultTypes: ['violations'] });
    return result.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  }, AXE_SOURCE);
  assert.deepEqual(violations, [], `${what}: axe-core violations`);
}

async function passwordStep() {
  await page.goto('/login');
  await page.getByLabel('Username', { exact: true }).fill(USERNAME);
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.waitForURL(`${BASE}/login/second-factor`);
}

async function typeCode(code) {
  await page.locator('form.factor input[name=code]').first().fill(code);
  await page.locator('form.factor button[type=submit]').first().click();
  await page.waitForLoadState('load');
}

async function verifyStatus() {
  return page.evaluate(async () => (await fetch('/auth/verify', { cache: 'no-store' })).status);
}

test('an authenticator app enrolled from the page guards the next sign-in', { timeout: 90_000 }, async (t) => {
  let broken = false;
  const step = (name, fn) =>
    t.test(name, async (s) => {
      if (broken) {
        s.skip('an earlier step failed');
        return;
      }
      try {
        await fn();
      } catch (e) {
        broken = true;
        if (ARTIFACTS) {
          mkdirSync(ARTIFACTS, { recursive: true });
          await page
            .screenshot({ path: join(ARTIFACTS, `factors-${name.replace(/[^a-z0-9]+/gi, '-')}.png`), fullPage: true })
            .catch(() => {});
        }
        throw e;
      }
    });

  let key;
  let usedStep;

  await step('the account page offers an authenticator app; the enrolment page shows a QR code and the key', async () => {
    await page.goto('/login');
    await page.getByLabel('Username', { exact: true }).fill(USERNAME);
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.waitForURL(`${BASE}/account`);
    assert.equal(await page.locator('#session-amr').textContent(), 'password');
    assert.equal(await page.locator('#no-factors').count(), 1);
    await page.locator('#add-totp').click();
    await page.waitForLoadState('load');
    assert.equal(await page.locator('#totp-qr svg path').count(), 1, 'an inline SVG QR code');
    const box = await page.locator('#totp-qr svg').boundingBox();
    assert.ok(box && box.width >= 150, `the QR code is drawn (${JSON.stringify(box)})`);
    key = base32(await page.locator('#totp-secret').textContent());
    assert.ok(key.length >= 20, 'a seed of at least 160 bits');
    await assertAccessible('the TOTP enrolment page');
  });

  await step('the first code from the app confirms it', async () => {
    usedStep = Math.floor(Date.now() / 1000 / 30);
    await page.locator('#confirm-code').fill(totp(key, usedStep));
    await page.locator('#confirm-totp').click();
    await page.waitForURL(`${BASE}/account?factor=added`);
    assert.equal(await page.locator('#factor-list li').count(), 1);
    assert.match(await page.locator('#factor-notice').textContent(), /set up/);
  });

  await step('sign out; the password alone now leads to the second step, which opens nothing', async () => {
    await page.locator('#sign-out').click();
    await page.waitForURL(/\/login$/);
    await passwordStep();
    assert.equal(await verifyStatus(), 401, 'the pending state is no session');
    assert.equal(await page.locator('form.factor').count(), 1, 'the app is offered');
    await assertAccessible('the second-step page');
  });

  await step('the code already used at enrolment is refused', async () => {
    await typeCode(totp(key, usedStep));
    assert.match(await page.locator('#second-step-error').textContent(), /not accepted/);
    assert.equal(new URL(page.url()).pathname, '/login/second-factor');
  });

  await step("the app's next code signs in; the account page shows both factors", async () => {
    usedStep += 1;
    await typeCode(totp(key, usedStep));
    await page.waitForURL(`${BASE}/account`);
    assert.equal(await page.locator('#session-amr').textContent(), 'password, one-time code, two factors');
    assert.equal(await verifyStatus(), 200);
  });

  await step('signed out and in again, the same code is refused the second time', async () => {
    await page.locator('#sign-out').click();
    await page.waitForURL(/\/login$/);
    await passwordStep();
    await typeCode(totp(key, usedStep));
    assert.match(await page.locator('#second-step-error').textContent(), /not accepted/);
    assert.equal(await verifyStatus(), 401);
  });
});
