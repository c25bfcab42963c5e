// `opine inspect MODEL`: what a checkpoint holds and what it will cost, without loading it; with
// --quant it loads the model quantized and reports the bytes it really keeps resident.
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "launch/args.h"
#include "launch/commands.h"
#include "launch/resolve.h"
#include "models/loader.h"
#include "quant/quant_linear.h"

namespace opine::launch {

namespace {

const std::vector<FlagSpec> kFlags = with_model_setup_flags({
    {"json", "", "print JSON instead of text"},
    {"dtype", "f32|bf16|f16", "dtype to load in with --quant (model.dtype): heads, embeddings, compute"},
    {"config", "FILE", "YAML configuration"},
    {"help", "", "show this help"},
});

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  std::ostringstream out;
  out << std::fixed << std::setprecision(u ? 1 : 0) << bytes << " " << units[u];
  return out.str();
}

// An encoder's hyperparameters (BERT / RoBERTa / XLM-R); no KV cache, no RoPE.
int inspect_encoder(const models::ModelFile& file, int64_t stored_params, bool as_json) {
  const models::EncoderConfig& c = *file.encoder;
  nlohmann::json j;
  j["path"] = file.path;
  j["format"] = models::model_format_name(file.format);
  j["model_type"] = c.model_type;
  j["head"] = c.head ? models::head_kind_name(*c.head) : "none";
  if (c.head) j["num_labels"] = c.num_labels;
  if (!c.labels.empty()) j["labels"] = c.labels;
  j["layers"] = c.num_layers;
  j["hidden_size"] = c.hidden_size;
  j["intermediate_size"] = c.intermediate_size;
  j["attention_heads"] = c.num_heads;
  j["vocab_size"] = c.vocab_size;
  j["max_tokens"] = c.max_tokens();
  j["hidden_act"] = c.hidden_act;
  j["stored_parameters"] = stored_params;
  j["tensors"] = file.tensors->names().size();
  j["stored_types"] = file.stored_types;
  if (as_json) {
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << "model        " << file.path << "\n"
            << "architecture " << c.model_type << " encoder, "
            << (c.head ? std::string(models::head_kind_name(*c.head)) + " head (" + std::to_string(c.num_labels) +
                             " outputs)"
                       : std::string("no head"))
            << "\n"
            << "layers       " << c.num_layers << ", hidden " << c.hidden_size << ", MLP " << c.intermediate_size
            << " (" << c.hidden_act << ")\n"
            << "attention    " << c.num_heads << " heads, head dim " << c.head_dim() << "\n"
            << "vocabulary   " << c.vocab_size << "\n"
            << "context      " << c.max_tokens() << " tokens\n"
            << "parameters   " << stored_params << " (" << std::fixed << std::setprecision(1) << stored_params / 1e6
            << "M stored)\n"
            << "tensors      " << j["tensors"].get<int64_t>() << ":";
  for (const auto& [type, count] : file.stored_types) std::cout << " " << count << " " << type;
  std::cout << "\n";
  return 0;
}

// Loads the model as the options say (quantized) and measures what it holds.
nlohmann::json measure_loaded(models::ModelFile& file, const OpineOptions& options) {
  models::LlamaModel model = build_model(file, options);
  int64_t q_layers = 0, q_params = 0, q_bytes = 0, dense_layers = 0;
  std::string describe;
  for (const LinearSlotRef& slot : model.linear_table()) {
    const auto* q = dynamic_cast<const quant::QuantLinear*>(slot.linear->op.get());
    if (!q) {
      ++dense_layers;
      continue;
    }
    ++q_layers;
    q_params += q->weight().numel();
    q_bytes += q->weight().bytes();
    describe = q->describe();
  }
  nlohmann::json j;
  j["quant"] = options.model.quant;
  j["describe"] = describe;
  j["dtype"] = options.model.dtype;
  j["resident_bytes"] = model.resident_bytes();
  j["linear_4bit"]["layers"] = q_layers;
  j["linear_4bit"]["params"] = q_params;
  j["linear_4bit"]["bytes"] = q_bytes;  // packed codes and every scale
  j["linear_4bit"]["bytes_per_param"] = q_params ? double(q_bytes) / double(q_params) : 0.0;
  j["linear_dense_layers"] = dense_layers;
  return j;
}

}  // namespace

int run_inspect(const std::vector<std::string>& argv) {
  Args args(kFlags, argv);
  if (args.has("help")) {
    std::cout << "usage: opine inspect MODEL [--json] [--quant nf4|fp4 [--no-double-quant] [--dtype bf16]]\n\n"
                 "MODEL is a Hugging Face folder (config.json + safetensors), a GGUF file or a\n"
                 "llama2.c checkpoint. Prints the architecture, sizes, stored tensor types and the\n"
                 "memory the weights and the KV cache take. With --quant it loads the model in 4 bits\n"
                 "and reports the bytes it keeps resident, and those of the 4-bit linear weights.\n\n"
              << format_flags(kFlags);
    return 0;
  }
  OPINE_CHECK(args.positionals().size() == 1, "opine inspect takes one MODEL (see --help)");
  OpineOptions options = resolve_options(args, with_model_setup_bindings({{"dtype", "model.dtype"}}));
  options.model.path = args.positionals()[0];
  models::ModelFile file = models::open_model_file(options.model.path);
  const models::LlamaConfig& c = file.config;

  int64_t stored_params = 0;
  for (const std::string& name : file.tensors->names()) {
    int64_t n = 1;
    for (int64_t d : file.tensors->shape(name)) n *= d;
    stored_params += n;
  }
  if (file.encoder) {
    OPINE_CHECK(options.model.quant == "none", "opine inspect --quant measures decoders; ", file.path, " is an encoder");
    return inspect_encoder(file, stored_params, args.has("json"));
  }
  const int64_t params = c.parameter_count();
  // Per token: keys and values of every layer.
  const int64_t kv_per_token = 2 * c.num_layers * c.num_kv_heads * c.head_dim;

  nlohmann::json j;
  j["path"] = file.path;
  j["format"] = models::model_format_name(file.format);
  j["model_type"] = c.model_type;
  j["head"] = models::head_kind_name(c.head);
  if (c.head != models::HeadKind::kCausalLm) j["num_labels"] = c.num_labels;
  j["layers"] = c.num_layers;
  j["hidden_size"] = c.hidden_size;
  j["intermediate_size"] = c.intermediate_size;
  j["attention_heads"] = c.num_heads;
  j["kv_heads"] = c.num_kv_heads;
  j["head_dim"] = c.head_dim;
  j["vocab_size"] = c.vocab_size;
  j["context_length"] = c.max_position_embeddings;
  j["rope_theta"] = c.rope_theta;
  j["rope_scaling"] = c.rope_scaling.type;
  j["tied_embeddings"] = c.tie_word_embeddings;
  j["qkv_bias"] = c.qkv_bias || c.attention_bias;
  if (c.sliding_window) j["sliding_window"] = *c.sliding_window;
  j["parameters"] = params;
  j["stored_parameters"] = stored_params;
  j["tensors"] = file.tensors->names().size();
  j["stored_types"] = file.stored_types;
  for (const auto& [k, v] : file.metadata) j["metadata"][k] = v;
  for (const char* dtype : {"f32", "bf16", "f16"}) {
    const int64_t bytes = params * (std::string(dtype) == "f32" ? 4 : 2);
    j["memory"]["weights_" + std::string(dtype)] = bytes;
    j["memory"]["kv_cache_per_1k_tokens_" + std::string(dtype)] =
        kv_per_token * 1024 * (std::string(dtype) == "f32" ? 4 : 2);
  }

  if (options.model.quant != "none") j["loaded"] = measure_loaded(file, options);

  if (args.has("json")) {
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << "model        " << file.path << "\n"
            << "format       " << j["format"].get<std::string>() << "\n"
            << "architecture " << c.model_type << " with a " << models::head_kind_name(c.head) << " head";
  if (c.head != models::HeadKind::kCausalLm) std::cout << " (" << c.num_labels << " outputs)";
  std::cout << "\n"
            << "layers       " << c.num_layers << ", hidden " << c.hidden_size << ", MLP "
            << c.intermediate_size << "\n"
            << "attention    " << c.num_heads << " heads, " << c.num_kv_heads << " key/value heads, head dim "
            << c.head_dim << (c.sliding_window ? ", sliding window " + std::to_string(*c.sliding_window) : "")
            << "\n"
            << "vocabulary   " << c.vocab_size << (c.tie_word_embeddings ? " (tied embeddings)" : "") << "\n"
            << "context      " << c.max_position_embeddings << " positions, RoPE theta " << c.rope_theta
            << (c.rope_scaling.type != "default" ? ", " + c.rope_scaling.type + " scaling" : "") << "\n"
            << "parameters   " << params << " (" << std::fixed << std::setprecision(1) << params / 1e6 << "M)\n"
            << "tensors      " << j["tensors"].get<int64_t>() << ":";
  for (const auto& [type, count] : file.stored_types) std::cout << " " << count << " " << type;
  std::cout << "\n";
  for (const auto& [k, v] : file.metadata) std::cout << std::left << std::setw(13) << k << v << "\n";
  std::cout << "memory       weights " << human_bytes(params * 4.0) << " in f32, " << human_bytes(params * 2.0)
            << " in bf16/f16; KV cache " << human_bytes(kv_per_token * 1024 * 2.0)
            << " per 1k tokens per sequence in bf16\n";
  if (j.contains("loaded")) {
    const nlohmann::json& l = j["loaded"];
    const nlohmann::json& q = l["linear_4bit"];
    std::cout << "loaded       " << human_bytes(l["resident_bytes"].get<double>()) << " resident ("
              << l["resident_bytes"].get<int64_t>() << " bytes) with " << l["describe"].get<std::string>()
              << " linear weights, the rest in " << l["dtype"].get<std::string>() << "\n"
              << "4-bit linear " << q["layers"].get<int64_t>() << " layers, " << q["params"].get<int64_t>()
              << " parameters in " << human_bytes(q["bytes"].get<double>()) << " (" << std::fixed
              << std::setprecision(4) << q["bytes_per_param"].get<double>() << " bytes/parameter, all scales included)\n";
  }
  return 0;
}

}  // namespace opine::launch
