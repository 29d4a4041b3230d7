/**
 * Headless Chromium (Debian's `chromium`, driven by playwright-core) for the dashboard's test and
 * scripts/dashboard-screenshot.ts, and a `thaw dashboard` child process to point it at.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** THAW_CHROMIUM, else /usr/bin/chromium; throws (never skips) with how to install it when missing. */
export function chromiumPath(env: Record<string, string | undefined> = process.env): string {
  const path = env.THAW_CHROMIUM ?? '/usr/bin/chromium';
  if (!existsSync(path)) {
    throw new Error(`Chromium not found at ${path}: install Debian's chromium (sudo apt-get install -y chromium; scripts/test-all.sh does) or set THAW_CHROMIUM to a Chromium binary`);
  }
  return path;
}

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: chromiumPath(), headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
}

/** A page that records every console error and uncaught page error. */
export async function openPage(browser: Browser, url: string, viewport = { width: 1400, height: 1100 }): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ viewport });
  const errors: string[] = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(`console: ${msg.text()}`);
  });
  page.on('pageerror', (err) => errors.push(`page error: ${err.message}`));
  page.on('requestfailed', (req) => errors.push(`request failed: ${req.url()} ${req.failure()?.errorText ?? ''}`));
  await page.goto(url, { waitUntil: 'load' });
  return { page, errors };
}

/** Waits until both curve charts were drawn (uPlot canvases present) and the workers table was filled. */
export async function waitForCharts(page: Page, timeoutMs = 20_000): Promise<void> {
  // An expression, evaluated in the page (this project compiles without the DOM library).
  await page.waitForFunction("document.body.dataset.curvesLoaded === 'true' && document.body.dataset.workersLoaded === 'true'", undefined, { timeout: timeoutMs });
  await page.waitForSelector('#chart-item canvas', { timeout: timeoutMs });
  await page.waitForSelector('#chart-user canvas', { timeout: timeoutMs });
}

/** A running `thaw dashboard` child process and its address. */
export interface DashboardProcess {
  url: string;
  child: ChildProcess;
  /** Everything it wrote on stderr (logs). */
  stderr: () => string;
  /** SIGTERM, resolves with the exit code. */
  stop: () => Promise<number | null>;
}

/** Starts `thaw dashboard ARGS --port 0` (through cli/dev.ts) and waits for its "listening on" line. */
export async function startDashboard(args: readonly string[], env: Record<string, string | undefined> = {}): Promise<DashboardProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'cli/dev.ts', 'dashboard', '--port', '0', ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  let out = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m?.[1] !== undefined) resolve(m[1]);
    });
    void exited.then((code) => reject(new Error(`thaw dashboard exited (${code}) before listening:\n${err}`)));
  });
  return {
    url,
    child,
    stderr: () => err,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}
