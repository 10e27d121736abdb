import test from 'ava';

// Resolved through package.json "exports" (a package may import itself by name), as users import it.
test('the package entry and the server subpath export the typed API', async (t) => {
  const main = await import('flower-native');
  for (const name of ['indexImages', 'openIndex', 'kernels', 'kernelInfo', 'Workspace', 'InputError', 'SkipDoc', 'loadFlow']) {
    t.truthy((main as Record<string, unknown>)[name], `flower-native exports ${name}`);
  }
  t.false('createServer' in main, 'the main entry stays free of the HTTP server');
  const server = await import('flower-native/server');
  t.is(typeof server.createServer, 'function');
  t.is(typeof server.serve, 'function');
  t.is(server.DEFAULT_HOST, '127.0.0.1');
});
