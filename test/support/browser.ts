/**
 * A real browser for the web client: Debian's chromium (scripts/setup.mjs installs it),
 * driven by playwright-core, headless, with a fresh profile per browser. It trusts the
 * test's self-signed certificate by its public key only. Nothing is downloaded.
 * Screenshots go to AGENTD_TEST_ARTIFACTS (scripts/run-tests.mjs keeps them outside the
 * run's temp dir and prints where), else to a temp dir; each path is printed.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import type { TestCert } from './remote.js';
import { tempDir } from './temp.js';

export const CHROMIUM = '/usr/bin/chromium';

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface TestBrowser {
  page: Page;
  context: BrowserContext;
  /** Saves a screenshot of the page as `<name>.png` and prints its path. */
  shot(name: string): Promise<string>;
  close(): Promise<void>;
}

function artifactsDir(): string {
  const dir = process.env.AGENTD_TEST_ARTIFACTS ? join(process.env.AGENTD_TEST_ARTIFACTS, 'web') : tempDir('agentd-web-shots-');
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** A headless chromium with a profile of its own, at `origin`'s page. */
export async function openBrowser(origin: string, cert: TestCert, label: string): Promise<TestBrowser> {
  const context = await chromium.launchPersistentContext(tempDir('agentd-chromium-'), {
    executablePath: CHROMIUM,
    headless: true,
    args: [...ARGS, `--ignore-certificate-errors-spki-list=${cert.spki}`],
    viewport: { width: 1280, height: 800 },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(30_000);
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(error.message));
  await page.goto(`${origin}/`);
  const shots = artifactsDir();
  return {
    page,
    context,
    async shot(name) {
      const path = join(shots, `${label}-${name}.png`);
      await page.screenshot({ path });
      process.stdout.write(`# screenshot: ${path}\n`);
      if (problems.length > 0) throw new Error(`the page threw: ${problems.join('; ')}`);
      return path;
    },
    close: () => context.close(),
  };
}

/** Logs the page in with `token`, the way a person does: typed into the form, posted once. */
export async function logIn(browser: TestBrowser, token: string): Promise<void> {
  const { page } = browser;
  await page.waitForSelector('#token');
  await page.fill('#token', token);
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('#connection[data-state=connected]');
}
