/** The search page: its HTML, its script (compiled by tsc beside page/html.js) and the favicon. */
import { readFile } from 'node:fs/promises';
import type { FastifyPluginAsync } from 'fastify';
import { FAVICON_SVG, PAGE_CSP, searchPage } from '../page/html.js';

/** The page script, compiled by tsc into dist/src/server/page/app.js. */
const PAGE_SCRIPT = new URL('../page/app.js', import.meta.url);

export const pageRoutes: FastifyPluginAsync = async (app) => {
  const pageScript = await readFile(PAGE_SCRIPT, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new Error(`${PAGE_SCRIPT.pathname}: search page script missing (${err.code ?? err.message}); run \`npm run build\``);
  });
  app.get('/', async (_request, reply) => reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').header('content-security-policy', PAGE_CSP).send(searchPage()));
  app.get('/favicon.svg', async (_request, reply) => reply.type('image/svg+xml').header('cache-control', 'public, max-age=86400').send(FAVICON_SVG));
  app.get('/app.js', async (_request, reply) => reply.type('text/javascript; charset=utf-8').header('cache-control', 'no-cache').send(pageScript));
};
