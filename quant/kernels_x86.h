// Hand-vectorised x86 paths of the CPU kernels (kernels_x86.cpp), internal to quant/. A 16-entry
// table lookup is one AVX-512 permute (two permutes and a blend on AVX2), where compilers emit
// slow gathers. Same IEEE multiplies and round-to-nearest-even conversions as the portable loops
// in kernels_cpu.cpp, so dequantized values are identical to the bit; each is picked at run time
// from what the CPU supports.
#pragma once

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <cstdint>

#if defined(__x86_64__) && defined(__GNUC__)
#define OPINE_QUANT_X86 1

namespace opine::quant::cpu::x86 {

bool has_avx2();  // with F16C

// Whole blocks [first_block, last_block) of a block size that is a multiple of 32.
template <typename T>
void dequantize_blocks(const uint8_t* packed, const float* absmax, int64_t first_block, int64_t last_block,
                       int64_t block_size, const float* book, T* out);

// `chunks` runs of 32 values starting at byte `p`, all with scale `scale`, into float.
void dequantize_chunks(const uint8_t* p, float scale, int64_t chunks, const float* book, float* row);

// out[r] = sum_i x[r * k + i] * W[first + i] for one weight row of k values (k % 32 == 0) and
// R = 1..8 input rows; weights decoded straight into FMAs. nullptr for other R.
using GemvRowFn = void (*)(const uint8_t* packed, const float* absmax, int64_t first, int64_t k, int64_t block_size,
                           const float* book, const float* x, float* out);
GemvRowFn gemv_row_for(int64_t rows);

}  // namespace opine::quant::cpu::x86
#endif
