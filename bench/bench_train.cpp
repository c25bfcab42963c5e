// Training-step throughput: opine's own optimizer step (launch::train_step, what `opine train`
// runs) on one fixed batch, repeated. Prints one JSON line (rank 0): seconds per step, tokens/s,
// the losses, memory, and the bytes the collectives moved per step. bench/train_step.py runs it
// beside transformers + PEFT (+ bitsandbytes) on the same weights and batch and prints ratios.
//   [mpirun -np N] bench_train --model DIR --batch-file B.safetensors [--steps 6] [--warmup 2]
//                  [--profile TRACE.json] [key=value ...]      (options as `opine train` takes)
// The batch file holds input_ids [B, T] and labels ([B] classes, or [B, T] tokens for
// data.format=sft); under N ranks each takes its B / N rows, so the global batch stays the same.
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/cuda.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>

#include "core/adamw.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/memory.h"
#include "core/runtime.h"
#include "core/safetensors.h"
#include "launch/options.h"
#include "launch/resolve.h"
#include "launch/train.h"
#include "launch/trainable.h"
#include "models/loader.h"

namespace {

using namespace opine;
using nlohmann::json;

data::Batch read_batch(const std::string& path, int rank, int world, data::LabelKind kind) {
  const SafetensorsFile f = SafetensorsFile::open(path);
  const at::Tensor ids = f.tensor("input_ids").to(at::kLong);
  const at::Tensor labels = f.tensor("labels").clone();
  OPINE_CHECK(ids.size(0) % world == 0, path, ": ", ids.size(0), " rows do not split over ", world, " ranks");
  const int64_t rows = ids.size(0) / world;
  data::Batch b;
  b.input_ids = ids.narrow(0, rank * rows, rows).contiguous();
  b.attention_mask = at::ones_like(b.input_ids);
  b.labels = labels.narrow(0, rank * rows, rows).contiguous();
  if (kind == data::LabelKind::kRegression) b.labels = b.labels.to(at::kFloat);
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  std::string batch_file, profile;
  int steps = 6, warmup = 2;
  std::vector<std::string> overrides;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--batch-file")
      batch_file = value();
    else if (a == "--model")
      overrides.push_back("model.path=" + value());
    else if (a == "--steps")
      steps = std::stoi(value());
    else if (a == "--warmup")
      warmup = std::stoi(value());
    else if (a == "--profile")
      profile = value();
    else if (a.find('=') != std::string::npos)
      overrides.push_back(a);
    else {
      std::cerr << "unknown argument " << a << "\n";
      return 2;
    }
  }
  if (batch_file.empty() || steps < 1 || warmup < 0) {
    std::cerr << "bench_train: give --batch-file, --steps >= 1 and --warmup >= 0\n";
    return 2;
  }
  try {
    const std::unique_ptr<dist::Runtime> runtime = dist::Runtime::start(&argc, &argv);
    log::set_rank(runtime->rank(), runtime->world_size());
    const launch::OpineOptions o = config::load<launch::OpineOptions>(std::nullopt, overrides);
    const at::Device device = runtime->bind_device(o.model.device);
    dist::Communicator& cpu = runtime->world();
    dist::Communicator& comm = runtime->for_device(device);
    const std::unique_ptr<models::Tokenizer> tokenizer = launch::resolve_tokenizer(o);
    models::ModelFile file = models::open_model_file(o.model.path);
    const std::vector<std::string> classes =
        o.model.num_labels > 0 ? std::vector<std::string>(size_t(o.model.num_labels), "c") : std::vector<std::string>{};
    launch::Trainable model(o, *runtime, device, file, classes, *tokenizer);
    AdamW optimizer(model.optimizer_groups(), o.train.optimizer);
    const data::Batch batch = read_batch(batch_file, runtime->rank(), runtime->world_size(), model.label_kind());
    const MemoryStats loaded = memory_stats(device);
    reset_peak(device);

    std::vector<double> seconds, losses;
    // Bytes the collectives of a step moved, on the device's communicator and the CPU one.
    auto moved = [&] { return comm.bytes_moved() + (&comm == &cpu ? 0 : cpu.bytes_moved()); };
    int64_t bytes_timed = 0;
    for (int s = 0; s < warmup + steps; ++s) {
      std::unique_ptr<torch::autograd::profiler::RecordProfile> trace;
      if (!profile.empty() && s == warmup) trace = std::make_unique<torch::autograd::profiler::RecordProfile>(profile);
      const int64_t b0 = moved();
      if (device.is_cuda()) torch::cuda::synchronize();
      const auto t0 = std::chrono::steady_clock::now();
      const launch::StepStats st = launch::train_step(model, optimizer, {batch}, at::Tensor(), o.train, 1.0, cpu);
      if (device.is_cuda()) torch::cuda::synchronize();
      const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      losses.push_back(st.loss);
      if (s >= warmup) {
        seconds.push_back(dt);
        bytes_timed += moved() - b0;
      }
    }
    std::vector<double> sorted = seconds;
    std::sort(sorted.begin(), sorted.end());
    const double median = sorted[sorted.size() / 2];
    const MemoryStats peak = memory_stats(device);
    const double tokens = double(batch.input_ids.numel()) * runtime->world_size();
    if (runtime->rank() == 0) {
      json out = {{"world_size", runtime->world_size()},
                  {"threads", at::get_num_threads()},
                  {"tokens_per_step", tokens},
                  {"step_seconds", seconds},
                  {"median_step_seconds", median},
                  {"tokens_per_s", tokens / median},
                  {"losses", losses},
                  {"rss_loaded", loaded.host_rss},
                  {"peak_rss", peak.host_peak_rss},
                  {"device_peak", peak.device_peak},
                  {"collective_bytes_per_step", double(bytes_timed) / double(std::max(steps, 1))},
                  {"shard_mode", dist::shard_mode_name(model.sharded().mode())},
                  {"trainable", model.describe_trainable()}};
      std::cout << out.dump() << std::endl;
    }
  } catch (const Error& e) {
    std::cerr << "bench_train: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
