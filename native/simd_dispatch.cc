#include "simd_dispatch.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#endif

namespace flower {
namespace {

#if defined(__x86_64__) || defined(_M_X64)
// XCR0 via xgetbv: which register states the OS saves on context switch.
uint64_t read_xcr0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (uint64_t(edx) << 32) | eax;
}

std::vector<Simd> detect() {
  std::vector<Simd> found;
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return {Simd::Scalar};
  const bool osxsave = ecx & bit_OSXSAVE, avx = ecx & bit_AVX, fma = ecx & bit_FMA;
  if (!osxsave || !avx) return {Simd::Scalar};
  const uint64_t xcr0 = read_xcr0();
  const bool os_ymm = (xcr0 & 0x6) == 0x6;              // SSE + AVX state
  const bool os_zmm = os_ymm && (xcr0 & 0xe0) == 0xe0;  // opmask + ZMM_Hi256 + Hi16_ZMM
  if (__get_cpuid_max(0, nullptr) < 7) return {Simd::Scalar};
  __cpuid_count(7, 0, eax, ebx, ecx, edx);
  const bool avx2 = ebx & bit_AVX2, avx512f = ebx & bit_AVX512F;
  if (os_zmm && avx512f && fma) found.push_back(Simd::Avx512);
  if (os_ymm && avx2 && fma) found.push_back(Simd::Avx2);
  found.push_back(Simd::Scalar);
  return found;
}
#elif defined(__aarch64__)
std::vector<Simd> detect() { return {Simd::Neon, Simd::Scalar}; }  // NEON is baseline on AArch64
#else
std::vector<Simd> detect() { return {Simd::Scalar}; }
#endif

Simd parse(const std::string& name) {
  for (Simd s : {Simd::Scalar, Simd::Neon, Simd::Avx2, Simd::Avx512})
    if (name == simd_name(s)) return s;
  throw std::invalid_argument("unknown SIMD path \"" + name + "\" (expected scalar, neon, avx2 or avx512)");
}

bool is_supported(Simd simd) {
  for (Simd s : supported_simd())
    if (s == simd) return true;
  return false;
}

Simd initial() {
  const Simd best = supported_simd().front();
  const char* forced = std::getenv("FLOWER_NATIVE_SIMD");
  if (!forced || !*forced) return best;
  try {
    const Simd wanted = parse(forced);
    if (is_supported(wanted)) return wanted;
    std::fprintf(stderr, "flower-native: FLOWER_NATIVE_SIMD=%s is not supported by this CPU/OS; using %s\n", forced,
                 simd_name(best));
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "flower-native: FLOWER_NATIVE_SIMD: %s; using %s\n", e.what(), simd_name(best));
  }
  return best;
}

std::atomic<Simd>& active() {
  static std::atomic<Simd> simd{initial()};
  return simd;
}

}  // namespace

const char* simd_name(Simd simd) {
  switch (simd) {
    case Simd::Avx512: return "avx512";
    case Simd::Avx2: return "avx2";
    case Simd::Neon: return "neon";
    default: return "scalar";
  }
}

const std::vector<Simd>& supported_simd() {
  static const std::vector<Simd> supported = detect();
  return supported;
}

Simd active_simd() { return active().load(); }

void set_active_simd(const std::string& name) {
  const Simd wanted = parse(name);
  if (!is_supported(wanted)) throw std::invalid_argument("SIMD path \"" + name + "\" is not supported by this CPU/OS");
  active().store(wanted);
}

ScoreBlockFn active_score_block() {
  switch (active_simd()) {
#if defined(__x86_64__) || defined(_M_X64)
    case Simd::Avx512: return score_block_avx512;
    case Simd::Avx2: return score_block_avx2;
#endif
#if defined(__aarch64__)
    case Simd::Neon: return score_block_neon;
#endif
    default: return score_block_scalar;
  }
}

}  // namespace flower
