// The package's install step: build the native kernels with cmake-js. A failed build is not a
// failed install: the package then runs on its TypeScript kernels, and says so once here.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

if (process.env.FLOWER_NATIVE_SKIP_BUILD === '1') {
  console.log('flower-native: FLOWER_NATIVE_SKIP_BUILD=1, not building the native kernels (TypeScript kernels will be used)');
  process.exit(0);
}

let failure;
try {
  const cmakeJs = createRequire(import.meta.url).resolve('cmake-js/bin/cmake-js');
  const build = spawnSync(process.execPath, [cmakeJs, 'compile'], { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (build.error) failure = build.error.message;
  else if (build.status !== 0) failure = `cmake-js exited with ${build.status}\n${`${build.stdout}${build.stderr}`.trim().split('\n').slice(-25).join('\n')}`;
} catch (error) {
  failure = error.message;
}

if (failure) {
  console.warn(
    `flower-native: WARNING: the native kernels did not build, so the slower TypeScript kernels will be used.\n` +
      `  Needs cmake >= 3.15 and a C++17 compiler; retry with \`npm run build:native\`. Cause:\n${failure.replace(/^/gm, '  ')}`,
  );
} else {
  console.log('flower-native: native kernels built (build/Release/flower_native.node)');
}
