/**
 * `npm run dashboard:screenshot [-- --out DIR] [--png FILE] [--targets URL,...]`: starts
 * `thaw dashboard --demo` on what `thaw demo` left in DIR (default .thaw/demo; run `npx thaw demo`
 * first), opens it in headless Chromium (Debian's chromium, or THAW_CHROMIUM) and writes a
 * full-page screenshot to FILE (default docs/dashboard.png). Fails on any console or page error.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { launchChromium, openPage, startDashboard, waitForCharts } from '../test/integration/dashboard/browser.js';

const { values } = parseArgs({ options: { out: { type: 'string', default: '.thaw/demo' }, png: { type: 'string', default: 'docs/dashboard.png' }, targets: { type: 'string' } } });
const out = resolve(values.out);
const png = resolve(values.png);
if (!existsSync(join(out, 'chdb'))) {
  process.stderr.write(`no demo output in ${out}: run \`npx thaw demo --out ${values.out}\` first\n`);
  process.exit(2);
}

const dash = await startDashboard(['--demo', '--out', values.out, '--log-level', 'warn', ...(values.targets === undefined ? [] : ['--targets', values.targets])]);
const browser = await launchChromium();
let code = 0;
try {
  const { page, errors } = await openPage(browser, dash.url, { width: 1400, height: 640 });
  await waitForCharts(page);
  await page.screenshot({ path: png, fullPage: true });
  if (errors.length > 0) {
    process.stderr.write(`page errors:\n${errors.join('\n')}\n`);
    code = 1;
  } else process.stdout.write(`wrote ${png}\n`);
} finally {
  await browser.close();
  await dash.stop();
}
process.exitCode = code;
