// Drives a running JupyterLab in the system Chromium (playwright-core, no browser download) as a
// person would: open a notebook on the webaccel kernel, type and run a cell that plots, ask for
// Tab completion, start a long compare and interrupt it from the toolbar. Screenshots go to
// OUT; what was seen is printed as one JSON line for the Python test to check.
//
//   node drive.mjs URL OUT        (URL: the notebook's /lab/tree/... address with its token)

import { chromium } from 'playwright-core';

const [url, out] = process.argv.slice(2);
const executablePath = process.env.WEBACCEL_CHROMIUM || '/usr/lib/chromium/chromium';
const seen = {};
const browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox'] });
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
try {
  await page.goto(url);
  const idle = '.jp-Notebook-ExecutionIndicator[data-status="idle"]';
  // The notebook's kernel has started when the toolbar names it and says it is idle.
  await page.locator('.jp-NotebookPanel-toolbar', { hasText: 'WebAccel (Rhai)' }).waitFor({ timeout: 120_000 });
  await page.waitForSelector(idle, { timeout: 120_000 });
  seen.kernel = 'WebAccel (Rhai)';

  // Cell 1: typed (inserted as text, so the editor's bracket closing does not double them) and
  // run with Shift+Enter; it plots.
  const editors = () => page.locator('.jp-Cell .cm-content');
  await editors().nth(0).click();
  await page.keyboard.insertText(
    'plot(sql("select * from (values (1, 2.5), (2, 4.0), (3, 3.5)) t(x, y)"), #{x: "x", y: "y", kind: "line", title: "typed in JupyterLab"})',
  );
  await page.keyboard.press('Shift+Enter');
  // JupyterLab renders image/svg+xml as an <img> of the SVG (sanitised): read it back.
  const svg = page.locator('.jp-OutputArea-output.jp-RenderedSVG img');
  await svg.first().waitFor({ timeout: 120_000 });
  seen.svg = await svg.count();
  const src = decodeURIComponent((await svg.first().getAttribute('src')) || '');
  seen.svgTitle = src.startsWith('data:image/svg+xml') && src.includes('typed in JupyterLab');
  await page.waitForSelector(idle, { timeout: 60_000 });
  await page.screenshot({ path: `${out}/1-plot.png` });

  // Cell 2: Tab completion offers a name the cell binds before the cursor.
  await editors().nth(1).click();
  await page.keyboard.insertText('let budget_ms = 5;\nbudg');
  await page.keyboard.press('Tab');
  await page.waitForSelector('.jp-Completer', { state: 'visible', timeout: 30_000 });
  seen.completions = await page.locator('.jp-Completer-item').allTextContents();
  await page.screenshot({ path: `${out}/2-completion.png` });
  await page.keyboard.press('Escape');
  await page.keyboard.press('Control+a');
  await page.keyboard.press('Backspace');

  // Cell 2 again: a long compare; its progress shows; the toolbar's interrupt stops it.
  await page.keyboard.insertText(
    'compare(#{models: ["paraphrase-minilm-l3-v2"], browsers: ["chromium"], platforms: ["wasm"], runs: 5000, warmup: 0, warmup_s: 0, accuracy: false})',
  );
  await page.keyboard.press('Shift+Enter');
  const progress = page.locator('.jp-OutputArea-output .webaccel-progress', { hasText: 'timed runs' });
  await progress.waitFor({ timeout: 120_000 });
  await page.waitForTimeout(1500);
  seen.progress = (await progress.textContent())?.trim();
  await page.screenshot({ path: `${out}/3-progress.png` });
  const asked = Date.now();
  await page.click('.jp-NotebookPanel-toolbar [data-command="notebook:interrupt-kernel"]');
  const stopped = page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]', { hasText: 'Interrupted' });
  await stopped.waitFor({ timeout: 30_000 });
  seen.interruptSeconds = (Date.now() - asked) / 1000;
  seen.interrupted = (await stopped.textContent())?.trim();
  await page.waitForSelector(idle, { timeout: 60_000 });
  await page.screenshot({ path: `${out}/4-interrupted.png` });
} catch (e) {
  // What the page showed when a step failed, for the person reading the failure.
  await page.screenshot({ path: `${out}/failed.png` }).catch(() => {});
  seen.error = String(e);
  process.exitCode = 1;
} finally {
  await browser.close();
  console.log(JSON.stringify(seen));
}
