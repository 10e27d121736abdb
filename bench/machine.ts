/** What machine the figures come from: printed with every bench summary and kept in the results JSON. */
import fs from 'node:fs';
import os from 'node:os';
import { kernelInfo, type KernelInfo } from '../src/kernels/index.js';

export interface MachineInfo {
  readonly host: string;
  readonly cpuModel: string;
  /** CPUs this process may use (os.availableParallelism). */
  readonly cores: number;
  /** Best SIMD level the CPU reports (from /proc/cpuinfo flags where available). */
  readonly cpuSimd: string;
  /** Kernels and SIMD path actually in use. */
  readonly kernels: KernelInfo;
  readonly memoryGiB: number;
  readonly node: string;
  readonly platform: string;
}

const SIMD_FLAGS: readonly [flag: string, level: string][] = [
  ['avx512f', 'avx512'],
  ['avx2', 'avx2'],
  ['avx', 'avx'],
  ['sse4_2', 'sse4.2'],
  ['asimd', 'neon'],
];

function cpuSimd(): string {
  if (process.arch === 'arm64') return 'neon';
  let flags: Set<string>;
  try {
    const line = fs
      .readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => /^(flags|Features)\s*:/.test(l));
    flags = new Set((line?.split(':')[1] ?? '').trim().split(/\s+/));
  } catch {
    return 'unknown';
  }
  const simd = SIMD_FLAGS.filter(([flag]) => flags.has(flag)).map(([, level]) => level)[0] ?? 'scalar';
  return flags.has('fma') && simd.startsWith('avx') ? `${simd}+fma` : simd;
}

export function machineInfo(): MachineInfo {
  return {
    host: os.hostname(),
    cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
    cores: os.availableParallelism(),
    cpuSimd: cpuSimd(),
    kernels: kernelInfo(),
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
  };
}

export function machineMarkdown(m: MachineInfo): string {
  const kernels =
    m.kernels.kernels === 'native' ? `native (${m.kernels.simd}${m.kernels.threads ? `, ${m.kernels.threads} top-k threads` : ''})` : `TypeScript (${m.kernels.reason ?? 'native not loaded'})`;
  return `**Machine**: ${m.cpuModel}, ${m.cores} cores, CPU SIMD ${m.cpuSimd}, ${m.memoryGiB} GiB RAM, Node ${m.node} on ${m.platform}; kernels: ${kernels}.`;
}
