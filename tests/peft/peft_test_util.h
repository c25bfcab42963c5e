// Helpers shared by the peft tests: reference files, tensor comparison.
#pragma once

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "models/llama.h"
#include "models/safetensors.h"
#include "test_util.h"

namespace opine::peft::test {

inline std::filesystem::path peft_ref() { return opine::test::reference_dir() / "peft"; }

inline nlohmann::json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

// max |a - b| / max |b|: the error relative to the reference's magnitude.
inline double rel_error(const at::Tensor& got, const at::Tensor& want) {
  const at::Tensor g = got.detach().to(at::kCPU, at::kDouble), w = want.detach().to(at::kCPU, at::kDouble);
  const double scale = std::max(w.abs().max().item<double>(), 1e-30);
  return (g - w).abs().max().item<double>() / scale;
}

// A fresh temporary folder, removed by the test fixture's owner.
inline std::filesystem::path temp_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() /
             ("opine_peft_" + name + "_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" +
              std::to_string(reinterpret_cast<uintptr_t>(&name) & 0xffff));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// A two-layer model small enough for finite differences, weights N(0, 0.2^2) from a fixed seed.
inline models::LlamaConfig tiny_config(int64_t hidden = 16, models::HeadKind head = models::HeadKind::kCausalLm) {
  models::LlamaConfig c;
  c.vocab_size = 32;
  c.hidden_size = hidden;
  c.intermediate_size = 24;
  c.num_layers = 2;
  c.num_heads = 2;
  c.num_kv_heads = 1;
  c.head_dim = hidden / 2;
  c.head = head;
  c.num_labels = head == models::HeadKind::kCausalLm ? 0 : 3;
  return c;
}

inline models::LlamaModel tiny_model(int64_t hidden = 16, models::HeadKind head = models::HeadKind::kCausalLm) {
  models::LlamaModel m(tiny_config(hidden, head), at::kFloat);
  at::Generator g = at::make_generator<at::CPUGeneratorImpl>(9);
  at::NoGradGuard no_grad;
  for (const models::WeightSlotRef& w : m.weight_table()) w.tensor->copy_(at::randn(w.shape, g) * 0.2);
  return m;
}

}  // namespace opine::peft::test
