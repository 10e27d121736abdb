// Runtime choice of the SIMD path for the dot-product kernels. Each instruction set lives in its
// own translation unit compiled with its own flags, so the baseline never executes AVX code.
#pragma once
#include <string>
#include <vector>

#include "score_kernels.h"

namespace flower {

enum class Simd { Scalar, Neon, Avx2, Avx512 };

const char* simd_name(Simd simd);
// Every path this CPU and OS can run, best first (always ends with Scalar).
const std::vector<Simd>& supported_simd();
// The path in use: the best supported one, or FLOWER_NATIVE_SIMD when that names a supported path.
Simd active_simd();
// Switches path; throws std::invalid_argument for an unknown or unsupported name.
void set_active_simd(const std::string& name);
ScoreBlockFn active_score_block();

}  // namespace flower
