/**
 * The search page in a real browser (Debian's chromium driven by playwright-core): upload a
 * fixture daisy, see daisies at the top of the grid, click a result and see its own results.
 * Screenshots go to test-output/. Skipped, with the reason in its title, when chromium is absent.
 */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { serve, type RunningServer } from '../src/server/serve.js';
import { flowerImage, projectRoot } from '../bench/fixtures.js';
import { buildSmallIndex, type SmallIndex } from '../bench/small-index.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const OUTPUT_DIR = path.join(projectRoot, 'test-output');
/** A daisy that is not in the index (daisies 801-804 are). */
const DAISY_QUERY = 806;

let index: SmallIndex;
let server: RunningServer;
let context: BrowserContext;
let userDataDir: string;

async function resultLabels(page: Page): Promise<string[]> {
  return page.locator('#results .result .label').allTextContents();
}

if (!fs.existsSync(CHROMIUM)) {
  test.skip(`search page in a browser — SKIPPED: ${CHROMIUM} is absent (install it with: apt-get update && apt-get install -y chromium)`, () => {});
} else {
  test.before(async () => {
    index = await buildSmallIndex('flower-browser');
    server = await serve({ workspace: index.workspace, port: 0, log: false });
    userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'flower-chromium-'));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      args: CHROMIUM_ARGS,
      headless: true,
      viewport: { width: 1280, height: 900 },
    });
    fs.mkdirSync(OUTPUT_DIR, { recursive: true });
  });

  test.after.always(async () => {
    await context?.close();
    await server?.close();
    index?.cleanup();
    if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
  });

  test('upload a daisy, see daisies first, click a result to search with it', async (t) => {
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
    });
    const origin = new URL(server.url).origin;
    page.on('response', (response) => {
      if (response.status() >= 400) problems.push(`HTTP ${response.status()} for ${response.url()}`);
    });
    page.on('request', (request) => {
      if (!request.url().startsWith(origin) && !request.url().startsWith('blob:')) problems.push(`external request: ${request.url()}`);
    });

    await page.goto(server.url);
    await page.locator('#stats').filter({ hasText: '12 images' }).waitFor();

    await page.setInputFiles('#file', flowerImage(DAISY_QUERY));
    await page
      .locator('#status')
      .filter({ hasText: /results for/ })
      .waitFor();
    const labels = await resultLabels(page);
    t.true(labels.length >= 4, `${labels.length} results in the grid`);
    t.is(labels[0], 'daisy');
    t.true(labels.slice(0, 4).filter((label) => label === 'daisy').length >= 3, `top 4: ${labels.slice(0, 4).join(', ')}`);
    // Thumbnails actually loaded (naturalWidth > 0), not broken images.
    await page.waitForFunction(() =>
      Array.from(document.querySelectorAll<HTMLImageElement>('#results img'))
        .slice(0, 4)
        .every((img) => img.complete && img.naturalWidth > 0),
    );
    await page.screenshot({ path: path.join(OUTPUT_DIR, 'browser-search.png'), fullPage: true });

    const first = page.locator('#results .result').first();
    const clickedDoc = await first.getAttribute('data-doc-id');
    await first.click();
    await page
      .locator('#status')
      .filter({ hasText: `(doc ${clickedDoc})` })
      .filter({ hasText: /results for/ })
      .waitFor();
    // A click asks for "more like this" from the doc's stored vectors: the doc itself is left out.
    const after = await page.locator('#results .result').evaluateAll((nodes) => nodes.map((node) => node.getAttribute('data-doc-id')));
    t.true(after.length > 0, 'more like this answers');
    t.false(after.includes(clickedDoc), 'the clicked doc is the query, not a result');
    t.is((await resultLabels(page))[0], 'daisy');
    await page.waitForFunction(() =>
      Array.from(document.querySelectorAll<HTMLImageElement>('#results img'))
        .slice(0, 4)
        .every((img) => img.complete && img.naturalWidth > 0),
    );
    await page.screenshot({ path: path.join(OUTPUT_DIR, 'browser-search-clicked.png'), fullPage: true });

    t.deepEqual(problems, []);
  });
}
