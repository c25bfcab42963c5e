// GGUF vocabularies (tokenizer.ggml.*) as llama.cpp reads them: "gpt2" byte-level BPE with the
// pre-tokenizer regexes tokenizer.ggml.pre names, and "llama" SentencePiece-style vocabularies.
#include <algorithm>
#include <cctype>

#include "core/error.h"
#include "models/gguf.h"
#include "models/tokenizer_bpe.h"
#include "models/tokenizer_bpe_internal.h"

namespace opine::models {
namespace {

using namespace bpe;

// llama.cpp's token types.
enum TokenType : int64_t {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6
};

// What llama.cpp does for one tokenizer.ggml.pre value: regexes applied one after another, each
// keeping both its matches and the text between them.
struct PreTokenizerEntry {
  std::vector<const char*> names;
  std::vector<std::string> regexes;
  bool ignore_merges = false;
  bool add_bos = false;
};

const std::vector<PreTokenizerEntry>& pre_tokenizer_table() {
  // The patterns are llama.cpp's (its adaptation of each model's tokenizer.json regex); the GPT-2
  // one lacks the final "|\s+", which changes nothing since unmatched text is kept.
  static const std::string kGpt2 =
      R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";
  // English contractions, spelled without (?i) as llama.cpp does.
  static const std::string kContractions = R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]))";
  static const std::string kLlama3 = kContractions +
                                     R"(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*)"
                                     R"(|\s*[\r\n]+|\s+(?!\S)|\s+)";
  static const std::string kQwen2 = kContractions +
                                    R"(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*)"
                                    R"(|\s*[\r\n]+|\s+(?!\S)|\s+)";
  // An upper-case run then lower-case letters (or the reverse), written with lookaheads.
  static const std::string kUpperLower = R"([^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+)";
  static const std::string kLowerUpper = R"([^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*)";
  static const std::string kGpt4o = kUpperLower + kContractions + "?|" + kLowerUpper + kContractions +
                                    R"(?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  static const std::string kTekken =
      kUpperLower + "|" + kLowerUpper + R"(|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  static const std::vector<PreTokenizerEntry> table = {
      {{"default"}, {R"([\p{P}\$\+<=>\^~\|]+)", kGpt2, R"(\p{N}+)", "[0-9][0-9][0-9]"}},
      {{"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2"},
       {kLlama3},
       true,
       true},
      {{"dbrx", "smaug-bpe"}, {kLlama3}},
      {{"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum",
        "exaone4", "mpt", "olmo", "jais", "trillion", "granite-docling"},
       {kGpt2}},
      {{"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b"},
       {R"(\p{N})", kGpt2}},
      {{"qwen2", "deepseek-r1-qwen", "megrez", "stablelm2", "hunyuan"}, {kQwen2}},
      {{"falcon"}, {R"([\p{P}\$\+<=>\^~\|`]+)", kGpt2, "[0-9][0-9][0-9]"}},
      {{"gpt-4o", "llama4"}, {kGpt4o}},
      {{"tekken"}, {kTekken}, true, true},
  };
  return table;
}

const PreTokenizerEntry& find_pre_tokenizer(const std::string& name, const std::string& file) {
  for (const PreTokenizerEntry& e : pre_tokenizer_table())
    for (const char* n : e.names)
      if (name == n) return e;
  throw Error(ErrorKind::kFormat, file + ": unsupported tokenizer.ggml.pre '" + name + "'");
}

std::optional<int64_t> token_id_key(const gguf::File& file, const std::string& key, size_t n_tokens) {
  const auto id = file.get_int(key);
  if (!id) return std::nullopt;
  OPINE_CHECK_FORMAT(*id >= 0 && static_cast<size_t>(*id) < n_tokens, file.path(), ": ", key, " = ", *id,
                     " is outside the vocabulary of ", n_tokens, " tokens");
  return id;
}

}  // namespace

std::unique_ptr<Tokenizer> load_gguf_tokenizer(const gguf::File& file) {
  const std::string& path = file.path();
  const auto model = file.get_string("tokenizer.ggml.model");
  OPINE_CHECK_FORMAT(model.has_value(), path, ": no tokenizer.ggml.model (the file carries no tokenizer)");
  const auto tokens = file.get_string_array("tokenizer.ggml.tokens");
  OPINE_CHECK_FORMAT(tokens.has_value() && !tokens->empty(), path, ": no tokenizer.ggml.tokens");
  const size_t n = tokens->size();
  std::vector<int64_t> types(n, kNormal);
  if (const auto t = file.get_int_array("tokenizer.ggml.token_type")) {
    OPINE_CHECK_FORMAT(t->size() >= n, path, ": tokenizer.ggml.token_type has ", t->size(), " entries for ",
                       n, " tokens");
    std::copy(t->begin(), t->begin() + n, types.begin());
  }

  PipelineSpec spec;
  spec.source = path;
  spec.matching = SpecialMatching::kLlama;
  spec.vocab = *tokens;
  // Empty tokens would collide in the look-up tables; llama.cpp renames them the same way.
  for (size_t id = 0; id < n; ++id)
    if (spec.vocab[id].empty()) spec.vocab[id] = "[EMPTY_" + std::to_string(id) + "]";

  std::string name = file.get_string("general.name").value_or("");
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  const bool phi3 = name.find("phi-3") != std::string::npos || name.find("phi3") != std::string::npos;
  for (size_t id = 0; id < n; ++id) {
    if (types[id] != kControl && types[id] != kUserDefined && types[id] != kUnknown) continue;
    AddedToken t;
    t.content = spec.vocab[id];
    t.id = static_cast<int64_t>(id);
    t.special = types[id] != kUserDefined;
    // llama.cpp strips the spaces after Phi-3's special tokens, by model name.
    t.rstrip = phi3 && t.content != "<unk>" && t.content != "<s>" && t.content != "<|endoftext|>";
    spec.added.push_back(std::move(t));
  }
  spec.skip_on_decode.emplace(n, false);
  for (size_t id = 0; id < n; ++id)
    (*spec.skip_on_decode)[id] = types[id] == kControl || types[id] == kUnknown;

  bool add_bos = false;
  if (*model == "gpt2") {
    const auto merge_strings = file.get_string_array("tokenizer.ggml.merges");
    OPINE_CHECK_FORMAT(merge_strings.has_value(), path, ": a gpt2 tokenizer needs tokenizer.ggml.merges");
    const std::string pre = file.get_string("tokenizer.ggml.pre").value_or("default");
    const PreTokenizerEntry& entry = find_pre_tokenizer(pre, path);
    StringMap<int32_t> ids;
    for (size_t id = 0; id < n; ++id) ids.emplace(spec.vocab[id], static_cast<int32_t>(id));
    std::vector<Merge> merges;
    merges.reserve(merge_strings->size());
    for (const std::string& m : *merge_strings) {
      // llama.cpp splits at the first space after the first character and keeps merges whose
      // halves it does not know; such a merge can never apply, so it is left out here.
      const size_t pos = m.find(' ', 1);
      if (pos == std::string::npos) continue;
      const auto a = ids.find(std::string_view(m).substr(0, pos)),
                 b = ids.find(std::string_view(m).substr(pos + 1));
      const auto c = ids.find(m.substr(0, pos) + m.substr(pos + 1));
      if (a == ids.end() || b == ids.end() || c == ids.end()) continue;
      merges.push_back({a->second, b->second, c->second});
    }
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    for (const std::string& r : entry.regexes)
      steps.push_back(
          make_split("", std::make_shared<const Regex>(r, path), SplitBehavior::kIsolated, false));
    steps.push_back(make_byte_level(false, /*use_regex=*/false));
    spec.pre_tokenizer = make_sequence_pre_tokenizer(std::move(steps));
    BpeOptions options;
    options.ignore_merges = entry.ignore_merges;
    spec.model = make_bpe_model(spec.vocab, merges, options, /*keep_first_duplicate=*/true);
    spec.decoder = make_byte_level_decoder();
    add_bos = entry.add_bos;
    spec.bos = token_id_key(file, "tokenizer.ggml.bos_token_id", n);
    spec.eos = token_id_key(file, "tokenizer.ggml.eos_token_id", n);
    spec.kind = "bpe (byte-level, gguf, pre-tokenizer " + pre + ")";
  } else if (*model == "llama") {
    std::vector<float> scores(n, 0.0f);
    if (const auto s = file.get_float_array("tokenizer.ggml.scores")) {
      OPINE_CHECK_FORMAT(s->size() >= n, path, ": tokenizer.ggml.scores has ", s->size(), " entries for ", n,
                         " tokens");
      for (size_t i = 0; i < n; ++i) scores[i] = static_cast<float>((*s)[i]);
    }
    auto default_id = [&](int64_t id) {
      return static_cast<size_t>(id) < n ? std::optional<int64_t>(id) : std::nullopt;
    };
    spec.bos = token_id_key(file, "tokenizer.ggml.bos_token_id", n);
    if (!file.has("tokenizer.ggml.bos_token_id")) spec.bos = default_id(1);
    spec.eos = token_id_key(file, "tokenizer.ggml.eos_token_id", n);
    if (!file.has("tokenizer.ggml.eos_token_id")) spec.eos = default_id(2);
    std::optional<int64_t> unk = token_id_key(file, "tokenizer.ggml.unknown_token_id", n);
    if (!file.has("tokenizer.ggml.unknown_token_id")) unk = default_id(0);
    const bool space_prefix = file.get_bool("tokenizer.ggml.add_space_prefix").value_or(true);
    spec.space_prefix_after_special = space_prefix;
    spec.normalizer = make_replace_normalizer(" ", nullptr, "\xE2\x96\x81");
    spec.model = make_spm_model(spec.vocab, std::move(scores),
                                unk ? std::optional<int32_t>(static_cast<int32_t>(*unk)) : std::nullopt);
    std::vector<std::unique_ptr<Decoder>> steps;
    steps.push_back(make_replace_decoder("\xE2\x96\x81", nullptr, " "));
    steps.push_back(make_byte_fallback_decoder());
    steps.push_back(make_fuse_decoder());
    if (space_prefix) steps.push_back(make_strip_decoder(" ", 1, 0));
    spec.decoder = make_sequence_decoder(std::move(steps));
    add_bos = true;
    spec.kind = "sentencepiece (gguf)";
  } else {
    throw Error(ErrorKind::kFormat, path + ": unsupported tokenizer.ggml.model '" + *model +
                                        "' (opine reads \"gpt2\" and \"llama\" GGUF vocabularies)");
  }
  spec.pad = token_id_key(file, "tokenizer.ggml.padding_token_id", n);
  add_bos = file.get_bool("tokenizer.ggml.add_bos_token").value_or(add_bos);
  const bool add_eos = file.get_bool("tokenizer.ggml.add_eos_token").value_or(false);
  if (add_bos) {
    OPINE_CHECK_FORMAT(
        spec.bos.has_value(), path,
        ": a BOS token is added (tokenizer.ggml.add_bos_token, or the default for this vocabulary) "
        "but tokenizer.ggml.bos_token_id is not set");
    spec.prefix.push_back(*spec.bos);
  }
  if (add_eos) {
    OPINE_CHECK_FORMAT(spec.eos.has_value(), path,
                       ": tokenizer.ggml.add_eos_token is set but tokenizer.ggml.eos_token_id is not");
    spec.suffix.push_back(*spec.eos);
  }
  return make_bpe_tokenizer(std::move(spec));
}

}  // namespace opine::models
