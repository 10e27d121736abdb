/** Usage errors: one line saying what is wrong, the usage, exit code 2. */
import test from 'ava';
import { runCli } from './e2e-helpers.js';

const cases: [string, string[], RegExp][] = [
  ['unknown option', ['query', 'a.jpg', '--workspace', 'ws', '--bogus'], /unknown option '--bogus'/],
  ['bad --top', ['query', 'a.jpg', '--workspace', 'ws', '--top', '0'], /--top <n>' argument '0' is invalid\. expected a positive integer/],
  ['bad --min-score', ['query', 'a.jpg', '--workspace', 'ws', '--min-score', 'high'], /expected a number, got 'high'/],
  ['bad --mode', ['query', 'a.jpg', '--workspace', 'ws', '--mode', 'best'], /expected one of expanded, bimatch, whole, chamfer, got 'best'/],
  ['missing image', ['query', '--workspace', 'ws'], /give query images, or --doc <id\|path> for an indexed one/],
  ['missing workspace', ['index', '--data', 'd'], /index needs --workspace <dir> or --store <url\|dir>/],
  ['bad --replicas', ['index', '--workspace', 'w', '--replicas', '1.5'], /expected a positive integer, got '1\.5'/],
  ['unknown command', ['indx'], /unknown command 'indx'/],
];

for (const [name, args, message] of cases) {
  test(`${name}: exit 2 with a one-line error and the usage`, async (t) => {
    const result = await runCli(args);
    t.is(result.code, 2);
    const lines = result.stderr.split('\n').filter((line) => line && !line.includes('native addon did not load'));
    t.regex(lines[0], /^error: /);
    t.regex(lines[0], message);
    t.regex(lines.at(-1)!, /^usage: flower-native/);
    t.true(lines.length <= 3, 'error, maybe a suggestion, usage');
    t.is(result.stdout, '');
  });
}

test('--help exits 0 and lists the commands', async (t) => {
  const result = await runCli(['--help']);
  t.is(result.code, 0);
  for (const command of ['index', 'query', 'eval', 'serve', 'doctor']) t.regex(result.stdout, new RegExp(`^  ${command} `, 'm'));
  t.notRegex(result.stdout, /^ {2}bench /m, 'the benchmark is its own program (npm run bench), not part of the shipped CLI');
});

test('doctor reports kernels, onnxruntime and sharp', async (t) => {
  const result = await runCli(['doctor', '--json']);
  t.is(result.code, 0);
  const report = JSON.parse(result.stdout) as { kernels: { kernels: string; simd: string }; encoder: { onnxruntime: string }; image: { sharp: string; libvips: string } };
  t.true(['native', 'ts'].includes(report.kernels.kernels));
  t.truthy(report.kernels.simd);
  t.regex(report.encoder.onnxruntime, /^\d+\.\d+/);
  t.regex(report.image.libvips, /^\d+\.\d+/);
});
