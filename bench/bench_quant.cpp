// 4-bit throughput: dequantization (GB/s of output written) and the 4-bit matmul against the
// dense bf16/f32 matmul over the same weight, for a 4096x4096 and an 11008x4096 (Llama-7B MLP)
// weight at batch 1, 8 and 64, on the CPU with all threads and, when there is one, on the GPU.
//   build/bin/bench_quant [--json] [--device cpu|cuda] [--min-seconds S]
// bench/quant_throughput.py runs it beside bitsandbytes' kernels and prints the ratios.
#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#ifdef OPINE_HAVE_CUDA
#include <c10/cuda/CUDAFunctions.h>
#endif

#include "core/error.h"
#include "quant/format.h"
#include "quant/quant_linear.h"

namespace {

using opine::quant::QuantConfig;
using opine::quant::QuantLinear;

double min_seconds = 0.3;

void sync(const at::Device& device) {
#ifdef OPINE_HAVE_CUDA
  if (device.is_cuda()) c10::cuda::device_synchronize();
#endif
}

// Mean seconds per call: one warm-up call, then as many calls as fit in min_seconds (at least 3).
double time_it(const at::Device& device, const std::function<void()>& fn) {
  fn();
  sync(device);
  int64_t calls = 0;
  const auto start = std::chrono::steady_clock::now();
  double elapsed = 0;
  while (calls < 3 || elapsed < min_seconds) {
    fn();
    ++calls;
    if (calls % 4 == 0 || calls < 4) {
      sync(device);
      elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
  }
  sync(device);
  elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return elapsed / double(calls);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    bool json_out = false;
    std::string device_name = "cpu";
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "--json") json_out = true;
      else if (a == "--device" && i + 1 < argc) device_name = argv[++i];
      else if (a == "--min-seconds" && i + 1 < argc) min_seconds = std::atof(argv[++i]);
      else OPINE_CHECK(false, "usage: bench_quant [--json] [--device cpu|cuda] [--min-seconds S]");
    }
    OPINE_CHECK(device_name == "cpu" || at::hasCUDA(), "no CUDA device for --device ", device_name);
    const at::Device device = device_name == "cpu" ? at::Device(at::kCPU) : at::Device(at::kCUDA, 0);
    c10::NoGradGuard no_grad;
    nlohmann::json out;
    out["device"] = device_name;
    out["threads"] = at::get_num_threads();
    at::manual_seed(0);
    for (const auto& [rows, cols] : {std::pair<int64_t, int64_t>{1024, 512}, {4096, 4096}, {11008, 4096}}) {
      const std::string shape = std::to_string(rows) + "x" + std::to_string(cols);
      const at::Tensor w32 = (at::randn({rows, cols}) * 0.02).to(device);
      QuantConfig config;  // nf4, block 64, double quant: QLoRA's defaults
      opine::Linear linear;
      linear.weight = w32;
      auto op = opine::quant::quantize_linear(linear, config, at::kBFloat16);
      const opine::quant::QuantizedTensor& q = op->weight();
      for (at::ScalarType dt : {at::kHalf, at::kBFloat16, at::kFloat}) {
        at::Tensor buf = at::empty({q.numel()}, at::TensorOptions().dtype(dt).device(device));
        const double s = time_it(device, [&] { opine::quant::dequantize_into(q, opine::quant::block_absmax(q), buf); });
        out["dequant"][shape][c10::toString(dt)] = {{"ms", s * 1e3}, {"gb_per_s", double(buf.nbytes()) / s / 1e9}};
      }
      for (at::ScalarType dt : {at::kBFloat16, at::kFloat}) {
        const at::Tensor w = w32.to(dt);
        op->to(device, dt);
        for (int64_t batch : {1, 8, 64}) {
          const at::Tensor x = at::randn({batch, cols}).to(device, dt);
          const double dense = time_it(device, [&] { at::linear(x, w); });
          const double four = time_it(device, [&] { op->forward(x); });
          out["matmul"][shape][c10::toString(dt)][std::to_string(batch)] = {
              {"dense_ms", dense * 1e3}, {"nf4_ms", four * 1e3}, {"nf4_over_dense", four / dense}};
        }
      }
    }
    if (json_out) {
      std::cout << out.dump(1) << "\n";
      return 0;
    }
    std::printf("device %s, %d threads; nf4, block 64, double quant\n", device_name.c_str(), int(out["threads"]));
    std::printf("\ndequantization (GB/s of output)\n%-12s %10s %10s %10s\n", "weight", "f16", "bf16", "f32");
    for (const auto& [shape, v] : out["dequant"].items())
      std::printf("%-12s %10.2f %10.2f %10.2f\n", shape.c_str(), v["Half"]["gb_per_s"].get<double>(),
                  v["BFloat16"]["gb_per_s"].get<double>(), v["Float"]["gb_per_s"].get<double>());
    std::printf("\nmatmul x[batch, in] W^T: dense vs nf4 (ms, nf4/dense)\n%-12s %-9s %6s %10s %10s %8s\n", "weight",
                "dtype", "batch", "dense", "nf4", "ratio");
    for (const auto& [shape, per_dtype] : out["matmul"].items())
      for (const auto& [dt, per_batch] : per_dtype.items())
        for (const auto& [batch, r] : per_batch.items())
          std::printf("%-12s %-9s %6s %10.3f %10.3f %8.2f\n", shape.c_str(), dt.c_str(), batch.c_str(),
                      r["dense_ms"].get<double>(), r["nf4_ms"].get<double>(), r["nf4_over_dense"].get<double>());
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "bench_quant: " << e.what() << "\n";
    return 1;
  }
}
