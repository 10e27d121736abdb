// Symmetric eigendecomposition (see eigen.h). As in eigen.ts, `w` holds the transpose of the
// textbook's working matrix V, so every O(n^3) loop walks rows. The QL rotations, which depend on
// d and e alone, are logged and applied to w in one pass, a panel of columns at a time, instead of
// a sweep over w per QL step. The dot products keep four partial sums, so they do not wait on one
// chain of additions. One thread: splitting the rotations over 2 threads gained nothing measurable
// on a 2-core machine busy with other work (n = 1280: 1425 vs 1409 ms), threads per Householder
// step lost time.
#include "eigen.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <type_traits>
#include <vector>

namespace flower {
namespace {

// Columns the QL rotations are applied to at a time (measured best of 8..128 for n = 1280).
constexpr int64_t kPanel = 32;
// Rotations logged before they are applied (16 bytes each): bounds the log at 64 MiB.
constexpr size_t kMaxLogged = size_t(1) << 22;

double dot(const double* x, const double* y, int64_t length) {
  double sum[4] = {0, 0, 0, 0};
  int64_t k = 0;
  for (; k + 4 <= length; k += 4)
    for (int lane = 0; lane < 4; lane++) sum[lane] += x[k + lane] * y[k + lane];
  for (; k < length; k++) sum[0] += x[k] * y[k];
  return (sum[0] + sum[1]) + (sum[2] + sum[3]);
}

// Householder reduction to tridiagonal form (diagonal d, sub-diagonal e[1..]); w becomes the
// accumulated transform, transposed.
void tridiagonalize(double* w, double* d, double* e, int64_t n) {
  for (int64_t j = 0; j < n; j++) d[j] = w[j * n + n - 1];
  for (int64_t i = n - 1; i > 0; i--) {
    double scale = 0;
    double h = 0;
    for (int64_t k = 0; k < i; k++) scale += std::fabs(d[k]);
    if (scale == 0) {
      e[i] = d[i - 1];
      for (int64_t j = 0; j < i; j++) {
        d[j] = w[j * n + i - 1];
        w[j * n + i] = 0;
        w[i * n + j] = 0;
      }
    } else {
      for (int64_t k = 0; k < i; k++) {
        d[k] /= scale;
        h += d[k] * d[k];
      }
      double f = d[i - 1];
      double g = std::sqrt(h);
      if (f > 0) g = -g;
      e[i] = scale * g;
      h -= f * g;
      d[i - 1] = f - g;
      std::fill(e, e + i, 0.0);
      // e = (lower triangle of w) * d, each stored element read once for both of its uses.
      for (int64_t j = 0; j < i; j++) {
        const double* row = w + j * n;
        const double fj = d[j];
        w[i * n + j] = fj;
        for (int64_t k = j + 1; k < i; k++) e[k] += row[k] * fj;
        e[j] += row[j] * fj + dot(row + j + 1, d + j + 1, i - j - 1);
      }
      f = 0;
      for (int64_t j = 0; j < i; j++) {
        e[j] /= h;
        f += e[j] * d[j];
      }
      const double hh = f / (h + h);
      for (int64_t j = 0; j < i; j++) e[j] -= hh * d[j];
      // Rank-2 update of the lower triangle.
      for (int64_t j = 0; j < i; j++) {
        double* row = w + j * n;
        const double fj = d[j];
        const double gj = e[j];
        for (int64_t k = j; k < i; k++) row[k] -= fj * e[k] + gj * d[k];
        d[j] = row[i - 1];
        row[i] = 0;
      }
    }
    d[i] = h;
  }
  // Accumulate the transforms.
  for (int64_t i = 0; i < n - 1; i++) {
    w[i * n + n - 1] = w[i * n + i];
    w[i * n + i] = 1;
    const double h = d[i + 1];
    double* next = w + (i + 1) * n;
    if (h != 0) {
      for (int64_t k = 0; k <= i; k++) d[k] = next[k] / h;
      for (int64_t j = 0; j <= i; j++) {
        double* row = w + j * n;
        const double g = dot(next, row, i + 1);
        for (int64_t k = 0; k <= i; k++) row[k] -= g * d[k];
      }
    }
    std::fill(next, next + i + 1, 0.0);
  }
  for (int64_t j = 0; j < n; j++) {
    d[j] = w[j * n + n - 1];
    w[j * n + n - 1] = 0;
  }
  w[n * n - 1] = 1;
  e[0] = 0;
}

// The Givens rotations of QL steps, logged so they reach w in one pass instead of one per step:
// step t rotated rows i and i + 1 of w by (c[at + i - l], s[at + i - l]), i from m - 1 down to l.
struct Rotations {
  struct Step {
    int64_t l, m, at;
  };
  std::vector<Step> steps;
  std::vector<double> c, s;
};

// The logged steps on columns [k0, k0 + width) of w. Along a step, rotation i finishes row i + 1
// and hands the new row i to rotation i - 1: that row is carried in a buffer. A compile-time
// width (a full panel) lets the compiler unroll the row loop and keep the carry in registers.
template <typename Width>
void rotate_panel(double* w, int64_t n, const Rotations& log, int64_t k0, Width width) {
  double carry[kPanel];
  for (const auto& step : log.steps) {
    std::copy(w + step.m * n + k0, w + step.m * n + k0 + width, carry);
    for (int64_t i = step.m - 1; i >= step.l; i--) {
      const double* a = w + i * n + k0;
      double* b = w + (i + 1) * n + k0;
      const double c = log.c[step.at + i - step.l];
      const double s = log.s[step.at + i - step.l];
      for (int64_t k = 0; k < width; k++) {
        const double x = a[k];
        const double t = carry[k];
        b[k] = s * x + c * t;
        carry[k] = c * x - s * t;
      }
    }
    std::copy(carry, carry + width, w + step.l * n + k0);
  }
}

// Applies the logged rotations to w a panel at a time: a panel of every row stays in cache
// through all the steps.
void apply_rotations(double* w, int64_t n, const Rotations& log) {
  for (int64_t k0 = 0; k0 < n; k0 += kPanel) {
    if (n - k0 >= kPanel) {
      rotate_panel(w, n, log, k0, std::integral_constant<int64_t, kPanel>());
    } else {
      rotate_panel(w, n, log, k0, n - k0);
    }
  }
}

// Implicit QL on the tridiagonal (d, e): d becomes the eigenvalues, row i of w the eigenvector of d[i].
void diagonalize(double* w, double* d, double* e, int64_t n) {
  for (int64_t i = 1; i < n; i++) e[i - 1] = e[i];
  e[n - 1] = 0;
  Rotations log;
  double f = 0;
  double tst1 = 0;
  const double eps = std::ldexp(1.0, -52);
  for (int64_t l = 0; l < n; l++) {
    tst1 = std::max(tst1, std::fabs(d[l]) + std::fabs(e[l]));
    int64_t m = l;
    while (m < n - 1 && std::fabs(e[m]) > eps * tst1) m++;
    if (m > l) {
      do {
        double g = d[l];
        double p = (d[l + 1] - g) / (2 * e[l]);
        double r = std::hypot(p, 1.0);
        if (p < 0) r = -r;
        d[l] = e[l] / (p + r);
        d[l + 1] = e[l] * (p + r);
        const double dl1 = d[l + 1];
        double h = g - d[l];
        for (int64_t i = l + 2; i < n; i++) d[i] -= h;
        f += h;
        p = d[m];
        double c = 1;
        double c2 = c;
        double c3 = c;
        const double el1 = e[l + 1];
        double s = 0;
        double s2 = 0;
        const int64_t at = int64_t(log.c.size());
        log.steps.push_back({l, m, at});
        log.c.resize(at + m - l);
        log.s.resize(at + m - l);
        for (int64_t i = m - 1; i >= l; i--) {
          c3 = c2;
          c2 = c;
          s2 = s;
          g = c * e[i];
          h = c * p;
          r = std::hypot(p, e[i]);
          e[i + 1] = s * r;
          s = e[i] / r;
          c = p / r;
          p = c * d[i] - s * g;
          d[i + 1] = h + s * (c * g + s * d[i]);
          log.c[at + i - l] = c;
          log.s[at + i - l] = s;
        }
        // The rotations depend on d and e alone, never on w: they wait in the log.
        if (log.c.size() >= kMaxLogged) {
          apply_rotations(w, n, log);
          log = Rotations();
        }
        p = -s * s2 * c3 * el1 * e[l] / dl1;
        e[l] = s * p;
        d[l] = c * p;
      } while (std::fabs(e[l]) > eps * tst1);
    }
    d[l] += f;
    e[l] = 0;
  }
  apply_rotations(w, n, log);
}

}  // namespace

void symmetric_eigen(const double* a, int64_t n, double* values, double* vectors) {
  std::vector<double> w(a, a + n * n), d(n), e(n);
  tridiagonalize(w.data(), d.data(), e.data(), n);
  diagonalize(w.data(), d.data(), e.data(), n);
  // Stable, like the TS sort: equal eigenvalues keep the QL order.
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), int64_t(0));
  std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return d[x] > d[y]; });
  for (int64_t to = 0; to < n; to++) {
    const double* from = w.data() + order[to] * n;
    double* out = vectors + to * n;
    values[to] = d[order[to]];
    int64_t largest = 0;
    for (int64_t k = 1; k < n; k++)
      if (std::fabs(from[k]) > std::fabs(from[largest])) largest = k;
    const double sign = from[largest] < 0 ? -1 : 1;
    for (int64_t k = 0; k < n; k++) out[k] = sign * from[k];
  }
}

}  // namespace flower
