// Eigendecomposition of a symmetric matrix: Householder tridiagonalization, then the implicit QL
// algorithm, in double: the same steps as src/kernels/eigen.ts. No N-API here: eigen_binding.cc
// wraps it.
#pragma once
#include <cstdint>

namespace flower {

// Eigenvalues of the symmetric n x n row-major matrix `a` (only read) into `values` (n, largest
// first), and into `vectors` (n x n) row i the unit eigenvector of values[i], its largest-magnitude
// component (the first such) positive.
void symmetric_eigen(const double* a, int64_t n, double* values, double* vectors);

}  // namespace flower
