// Loaders for Hugging Face tokenizers: tokenizer.json (with tokenizer_config.json beside it; BPE
// and WordPiece models here, Unigram handed to the XLM-R loader) and the vocab.json + merges.txt
// layout of GPT-2 and Qwen2.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "core/json_file.h"
#include "models/tokenizer_bpe.h"
#include "models/tokenizer_bpe_internal.h"
#include "models/tokenizer_xlmr.h"

namespace opine::models {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;
using namespace bpe;

json parse_json(const std::string& path) { return read_json_file(path); }

[[noreturn]] void unsupported(const std::string& what, const std::string& type, const std::string& file) {
  throw Error(ErrorKind::kFormat, detail::concat(file, ": unsupported ", what, " '", type,
                                                 "' (opine reads the components real LLM and BERT tokenizers "
                                                 "use; see models/tokenizer_bpe.h and models/tokenizer_wordpiece.h)"));
}

std::string type_of(const json& j, const std::string& what, const std::string& file) {
  OPINE_CHECK_FORMAT(j.is_object() && j.contains("type") && j["type"].is_string(), file, ": ", what,
                     " without a \"type\"");
  return j["type"].get<std::string>();
}

// A {"String": s} or {"Regex": r} pattern: the literal, or the compiled regex.
std::pair<std::string, std::shared_ptr<const Regex>> parse_pattern(const json& j, const std::string& file) {
  if (j.contains("String")) return {j["String"].get<std::string>(), nullptr};
  if (j.contains("Regex")) return {"", std::make_shared<const Regex>(j["Regex"].get<std::string>(), file)};
  throw Error(ErrorKind::kFormat, file + ": pattern is neither {\"String\": ...} nor {\"Regex\": ...}");
}

std::unique_ptr<Normalizer> parse_normalizer(const json& j, const std::string& file) {
  if (j.is_null()) return nullptr;
  const std::string type = type_of(j, "normalizer", file);
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Normalizer>> steps;
    for (const json& n : j.at("normalizers"))
      if (auto step = parse_normalizer(n, file)) steps.push_back(std::move(step));
    return make_sequence_normalizer(std::move(steps));
  }
  if (type == "NFC") return make_unicode_normalizer(UnicodeForm::kNfc);
  if (type == "NFD") return make_unicode_normalizer(UnicodeForm::kNfd);
  if (type == "NFKC") return make_unicode_normalizer(UnicodeForm::kNfkc);
  if (type == "NFKD") return make_unicode_normalizer(UnicodeForm::kNfkd);
  if (type == "Prepend") return make_prepend_normalizer(j.at("prepend").get<std::string>());
  if (type == "Replace") {
    auto [literal, regex] = parse_pattern(j.at("pattern"), file);
    return make_replace_normalizer(std::move(literal), std::move(regex), j.at("content").get<std::string>());
  }
  if (type == "Strip")
    return make_strip_normalizer(j.value("strip_left", true), j.value("strip_right", true));
  if (type == "BertNormalizer") {
    BertNormalizerOptions options;
    options.clean_text = j.value("clean_text", true);
    options.handle_chinese_chars = j.value("handle_chinese_chars", true);
    if (j.contains("strip_accents") && j["strip_accents"].is_boolean())
      options.strip_accents = j["strip_accents"].get<bool>();
    options.lowercase = j.value("lowercase", true);
    return make_bert_normalizer(options);
  }
  unsupported("normalizer", type, file);
}

PrependScheme parse_scheme(const json& j, const std::string& file) {
  if (j.contains("prepend_scheme")) {
    const std::string s = j["prepend_scheme"].get<std::string>();
    if (s == "always") return PrependScheme::kAlways;
    if (s == "first") return PrependScheme::kFirst;
    if (s == "never") return PrependScheme::kNever;
    unsupported("Metaspace prepend_scheme", s, file);
  }
  return j.value("add_prefix_space", true) ? PrependScheme::kAlways : PrependScheme::kNever;
}

std::unique_ptr<PreTokenizer> parse_pre_tokenizer(const json& j, const std::string& file, bool& byte_level) {
  if (j.is_null()) return nullptr;
  const std::string type = type_of(j, "pre_tokenizer", file);
  if (type == "Sequence") {
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    for (const json& p : j.at("pretokenizers"))
      if (auto step = parse_pre_tokenizer(p, file, byte_level)) steps.push_back(std::move(step));
    return make_sequence_pre_tokenizer(std::move(steps));
  }
  if (type == "ByteLevel") {
    byte_level = true;
    return make_byte_level(j.value("add_prefix_space", true), j.value("use_regex", true));
  }
  if (type == "Split") {
    auto [literal, regex] = parse_pattern(j.at("pattern"), file);
    const std::string b = j.at("behavior").get<std::string>();
    SplitBehavior behavior;
    if (b == "Removed") {
      behavior = SplitBehavior::kRemoved;
    } else if (b == "Isolated") {
      behavior = SplitBehavior::kIsolated;
    } else if (b == "MergedWithPrevious") {
      behavior = SplitBehavior::kMergedWithPrevious;
    } else if (b == "MergedWithNext") {
      behavior = SplitBehavior::kMergedWithNext;
    } else if (b == "Contiguous") {
      behavior = SplitBehavior::kContiguous;
    } else {
      unsupported("Split behavior", b, file);
    }
    return make_split(std::move(literal), std::move(regex), behavior, j.value("invert", false));
  }
  if (type == "Metaspace")
    return make_metaspace(j.value("replacement", std::string("\xE2\x96\x81")), parse_scheme(j, file),
                          j.value("split", true));
  if (type == "Digits") return make_digits(j.value("individual_digits", false));
  if (type == "BertPreTokenizer") return make_bert_pre_tokenizer();
  unsupported("pre_tokenizer", type, file);
}

std::unique_ptr<Decoder> parse_decoder(const json& j, const std::string& file) {
  if (j.is_null()) return nullptr;
  const std::string type = type_of(j, "decoder", file);
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Decoder>> steps;
    for (const json& d : j.at("decoders"))
      if (auto step = parse_decoder(d, file)) steps.push_back(std::move(step));
    return make_sequence_decoder(std::move(steps));
  }
  if (type == "ByteLevel") return make_byte_level_decoder();
  if (type == "Replace") {
    auto [literal, regex] = parse_pattern(j.at("pattern"), file);
    return make_replace_decoder(std::move(literal), std::move(regex), j.at("content").get<std::string>());
  }
  if (type == "ByteFallback") return make_byte_fallback_decoder();
  if (type == "Fuse") return make_fuse_decoder();
  if (type == "Strip")
    return make_strip_decoder(j.at("content").get<std::string>(), j.value("start", 0), j.value("stop", 0));
  if (type == "Metaspace")
    return make_metaspace_decoder(j.value("replacement", std::string("\xE2\x96\x81")), parse_scheme(j, file));
  if (type == "WordPiece")
    return make_wordpiece_decoder(j.value("prefix", std::string("##")), j.value("cleanup", true));
  unsupported("decoder", type, file);
}

// What a post-processor puts around a single sequence.
void parse_post_processor(const json& j, const std::string& file, std::vector<int64_t>& prefix,
                          std::vector<int64_t>& suffix) {
  if (j.is_null()) return;
  const std::string type = type_of(j, "post_processor", file);
  if (type == "ByteLevel") return;
  if (type == "Sequence") {
    // Each processor wraps what the ones before it produced.
    for (const json& p : j.at("processors")) {
      std::vector<int64_t> pre, suf;
      parse_post_processor(p, file, pre, suf);
      prefix.insert(prefix.begin(), pre.begin(), pre.end());
      suffix.insert(suffix.end(), suf.begin(), suf.end());
    }
    return;
  }
  if (type == "TemplateProcessing") {
    bool seen_sequence = false;
    for (const json& piece : j.at("single")) {
      if (piece.contains("Sequence")) {
        OPINE_CHECK_FORMAT(!seen_sequence, file, ": TemplateProcessing names the sequence twice");
        seen_sequence = true;
        continue;
      }
      const std::string name = piece.at("SpecialToken").at("id").get<std::string>();
      const json& special = j.at("special_tokens");
      OPINE_CHECK_FORMAT(special.contains(name), file, ": TemplateProcessing uses special token '", name,
                         "' it does not define");
      for (const json& id : special[name].at("ids"))
        (seen_sequence ? suffix : prefix).push_back(id.get<int64_t>());
    }
    OPINE_CHECK_FORMAT(seen_sequence, file, ": TemplateProcessing 'single' does not contain the sequence");
    return;
  }
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    prefix.push_back(j.at("cls").at(1).get<int64_t>());
    suffix.push_back(j.at("sep").at(1).get<int64_t>());
    return;
  }
  unsupported("post_processor", type, file);
}

// Splits a merges entry "a b". A token may itself contain spaces (some converted SentencePiece
// vocabularies have "▁ " or "  "): then the split is the one whose halves and join are tokens.
std::pair<std::string, std::string> split_merge(const std::string& line, const StringMap<int64_t>& vocab,
                                                const std::string& where) {
  const size_t first = line.find(' ');
  if (first != std::string::npos && first > 0 && first + 1 < line.size() &&
      line.find(' ', first + 1) == std::string::npos)
    return {line.substr(0, first), line.substr(first + 1)};
  for (size_t pos = first; pos != std::string::npos; pos = line.find(' ', pos + 1)) {
    if (pos == 0 || pos + 1 >= line.size()) continue;
    std::string a = line.substr(0, pos), b = line.substr(pos + 1);
    if (vocab.count(a) && vocab.count(b) && vocab.count(a + b)) return {std::move(a), std::move(b)};
  }
  throw Error(ErrorKind::kFormat,
              where + ": merge '" + line + "' is not two tokens of the vocabulary separated by a space");
}

// Model vocabulary as id -> token, checking ids are distinct.
std::vector<std::string> vocab_by_id(const StringMap<int64_t>& vocab, const std::string& file) {
  int64_t max_id = -1;
  for (const auto& [token, id] : vocab) {
    OPINE_CHECK_FORMAT(id >= 0 && id < (int64_t{1} << 31), file, ": token '", token, "' has id ", id);
    max_id = std::max(max_id, id);
  }
  std::vector<std::string> by_id(max_id + 1);
  for (const auto& [token, id] : vocab) {
    OPINE_CHECK_FORMAT(by_id[id].empty(), file, ": tokens '", by_id[id], "' and '", token, "' share id ", id);
    by_id[id] = token;
  }
  return by_id;
}

Merge resolve_merge(const std::string& a, const std::string& b, const StringMap<int64_t>& vocab,
                    const std::string& prefix, const std::string& where) {
  const auto ia = vocab.find(a), ib = vocab.find(b);
  OPINE_CHECK_FORMAT(ia != vocab.end(), where, ": merge names '", a, "', which is not in the vocabulary");
  OPINE_CHECK_FORMAT(ib != vocab.end(), where, ": merge names '", b, "', which is not in the vocabulary");
  // With a continuing-subword prefix the right half loses it in the join ("a" + "##b" -> "ab").
  const std::string joined = a + (!prefix.empty() && b.starts_with(prefix) ? b.substr(prefix.size()) : b);
  const auto ij = vocab.find(joined);
  OPINE_CHECK_FORMAT(ij != vocab.end(), where, ": merge '", a, " ", b, "' makes '", joined,
                     "', which is not in the vocabulary");
  return {static_cast<int32_t>(ia->second), static_cast<int32_t>(ib->second),
          static_cast<int32_t>(ij->second)};
}

// "bos_token": "<s>" or {"content": "<s>", ...} or null (explicitly none).
std::optional<std::optional<std::string>> config_token(const json& config, const char* key) {
  if (!config.is_object() || !config.contains(key)) return std::nullopt;  // not said
  const json& v = config[key];
  if (v.is_null()) return std::optional<std::string>();
  if (v.is_string()) return std::optional<std::string>(v.get<std::string>());
  if (v.is_object() && v.contains("content"))
    return std::optional<std::string>(v["content"].get<std::string>());
  return std::nullopt;
}

// Adds `tokens` the config lists to `spec.added`, unless a token with that id is there already.
void add_config_added_tokens(const json& config, PipelineSpec& spec) {
  if (!config.is_object() || !config.contains("added_tokens_decoder")) return;
  for (const auto& [key, value] : config["added_tokens_decoder"].items()) {
    const int64_t id = std::stoll(key);
    const bool present =
        std::any_of(spec.added.begin(), spec.added.end(), [&](const AddedToken& t) { return t.id == id; });
    if (!present) spec.added.push_back(parse_added_token(value, id));
  }
}

// Puts every added token into the vocabulary (extending it past the model's ids as needed).
void place_added_tokens(PipelineSpec& spec, const std::string& file) {
  for (const AddedToken& t : spec.added) {
    OPINE_CHECK_FORMAT(t.id >= 0 && t.id < (int64_t{1} << 31), file, ": added token '", t.content,
                       "' has id ", t.id);
    if (static_cast<size_t>(t.id) >= spec.vocab.size()) spec.vocab.resize(t.id + 1);
    spec.vocab[t.id] = t.content;
  }
}

std::optional<int64_t> find_id(const PipelineSpec& spec, const std::string& token) {
  for (const AddedToken& t : spec.added)
    if (t.content == token) return t.id;
  for (size_t id = 0; id < spec.vocab.size(); ++id)
    if (spec.vocab[id] == token) return static_cast<int64_t>(id);
  return std::nullopt;
}

// BOS/EOS/PAD from the config, else from well-known spellings.
void resolve_special_ids(const json& config, PipelineSpec& spec) {
  auto pick = [&](const char* key, std::initializer_list<const char*> known) -> std::optional<int64_t> {
    if (const auto said = config_token(config, key)) return *said ? find_id(spec, **said) : std::nullopt;
    for (const char* name : known)
      if (const auto id = find_id(spec, name)) return id;
    return std::nullopt;
  };
  spec.bos = pick("bos_token", {"<s>", "<|begin_of_text|>", "<|startoftext|>", "<bos>"});
  spec.eos = pick("eos_token", {"</s>", "<|end_of_text|>", "<|endoftext|>", "<eos>"});
  spec.pad = pick("pad_token", {"<pad>", "<|pad|>"});
}

// tokenizer_config.json's add_bos_token / add_eos_token decide the frame when it states them, as
// transformers' Llama-family tokenizers do.
void apply_add_flags(const json& config, PipelineSpec& spec) {
  if (!config.is_object()) return;
  const bool has_bos = config.contains("add_bos_token") && config["add_bos_token"].is_boolean();
  const bool has_eos = config.contains("add_eos_token") && config["add_eos_token"].is_boolean();
  if (has_bos && (!config["add_bos_token"].get<bool>() || spec.bos)) {
    spec.prefix.clear();
    if (config["add_bos_token"].get<bool>()) spec.prefix.push_back(*spec.bos);
  }
  if (has_eos && (!config["add_eos_token"].get<bool>() || spec.eos)) {
    spec.suffix.clear();
    if (config["add_eos_token"].get<bool>()) spec.suffix.push_back(*spec.eos);
  }
}

json read_optional_json(const fs::path& path) {
  if (!fs::exists(path)) return nullptr;
  return parse_json(path.string());
}

// The tokenizers library's "Qwen2" pre-tokenizer regex (Llama-3's with single digits).
const std::string kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*)"
    R"(|\s*[\r\n]+|\s+(?!\S)|\s+)";

}  // namespace

std::unique_ptr<Tokenizer> load_hf_tokenizer_json(const std::string& path) {
  const json j = parse_json(path);
  const json config = read_optional_json(fs::path(path).parent_path() / "tokenizer_config.json");
  try {
    OPINE_CHECK_FORMAT(j.is_object() && j.contains("model"), path, ": no \"model\" (not a tokenizer.json)");
    const json& model = j["model"];
    const std::string model_type =
        model.contains("type") ? model["type"].get<std::string>() : (model.contains("merges") ? "BPE" : "?");
    if (model_type == "Unigram") {
      // XLM-R's converted SentencePiece model: pieces and pipeline come from its
      // sentencepiece.bpe.model, scores and the added tokens' flags from this file.
      const fs::path spm = fs::path(path).parent_path() / "sentencepiece.bpe.model";
      OPINE_CHECK_FORMAT(fs::exists(spm), path,
                         ": a Unigram tokenizer.json; opine reads XLM-R's sentencepiece.bpe.model for Unigram "
                         "tokenizers, and there is none beside this file");
      return load_xlmr_tokenizer(spm.string(), j);
    }
    const bool wordpiece = model_type == "WordPiece";
    if (model_type != "BPE" && !wordpiece) unsupported("model", model_type, path);
    OPINE_CHECK_FORMAT(model.contains("vocab") && model["vocab"].is_object(), path, ": ", model_type,
                       " model without a vocab");
    if (!wordpiece) {
      OPINE_CHECK_FORMAT(model.contains("merges") && model["merges"].is_array(), path,
                         ": BPE model without merges");
      if (model.contains("dropout") && model["dropout"].is_number() && model["dropout"].get<double>() > 0)
        unsupported("BPE option", "dropout", path);
    }

    StringMap<int64_t> vocab;
    for (const auto& [token, id] : model["vocab"].items()) vocab.emplace(token, id.get<int64_t>());
    auto string_or_empty = [&](const char* key) {
      return model.contains(key) && model[key].is_string() ? model[key].get<std::string>() : std::string();
    };
    BpeOptions options;
    std::vector<Merge> merges;
    if (wordpiece) {
      // The library's defaults for what the file leaves out.
      options.continuing_subword_prefix =
          model.contains("continuing_subword_prefix") ? string_or_empty("continuing_subword_prefix") : "##";
      const std::string unk = model.contains("unk_token") ? string_or_empty("unk_token") : "[UNK]";
      const auto it = vocab.find(unk);
      OPINE_CHECK_FORMAT(it != vocab.end(), path, ": WordPiece unk_token '", unk, "' is not in the vocabulary");
      options.unk_id = static_cast<int32_t>(it->second);
    } else {
      options.continuing_subword_prefix = string_or_empty("continuing_subword_prefix");
      options.end_of_word_suffix = string_or_empty("end_of_word_suffix");
      options.byte_fallback = model.value("byte_fallback", false);
      options.fuse_unk = model.value("fuse_unk", false);
      options.ignore_merges = model.value("ignore_merges", false);
      if (const std::string unk = string_or_empty("unk_token"); !unk.empty()) {
        const auto it = vocab.find(unk);
        OPINE_CHECK_FORMAT(it != vocab.end(), path, ": unk_token '", unk, "' is not in the vocabulary");
        options.unk_id = static_cast<int32_t>(it->second);
      }
      merges.reserve(model["merges"].size());
      size_t index = 0;
      for (const json& m : model["merges"]) {
        const std::string where = detail::concat(path, ": merges[", index++, "]");
        if (m.is_array()) {
          OPINE_CHECK_FORMAT(m.size() == 2, where, ": a merge pair needs two tokens");
          merges.push_back(resolve_merge(m[0].get<std::string>(), m[1].get<std::string>(), vocab,
                                         options.continuing_subword_prefix, where));
        } else {
          const auto [a, b] = split_merge(m.get<std::string>(), vocab, where);
          merges.push_back(resolve_merge(a, b, vocab, options.continuing_subword_prefix, where));
        }
      }
    }

    PipelineSpec spec;
    spec.source = path;
    spec.vocab = vocab_by_id(vocab, path);
    if (j.contains("added_tokens") && j["added_tokens"].is_array())
      for (const json& t : j["added_tokens"])
        spec.added.push_back(parse_added_token(t, t.at("id").get<int64_t>()));
    add_config_added_tokens(config, spec);
    spec.normalizer = parse_normalizer(j.value("normalizer", json()), path);
    bool byte_level = false;
    spec.pre_tokenizer = parse_pre_tokenizer(j.value("pre_tokenizer", json()), path, byte_level);
    spec.decoder = parse_decoder(j.value("decoder", json()), path);
    parse_post_processor(j.value("post_processor", json()), path, spec.prefix, spec.suffix);
    if (wordpiece) {
      const size_t max_chars = model.value("max_input_chars_per_word", size_t{100});
      spec.model = make_wordpiece_model(spec.vocab, *options.unk_id, options.continuing_subword_prefix, max_chars);
    } else {
      spec.model = make_bpe_model(spec.vocab, merges, options, /*keep_first_duplicate=*/false);
    }
    place_added_tokens(spec, path);
    if (wordpiece) {
      // BERT has neither BOS nor EOS; what add_special puts around a text is the post-processor's.
      const auto pad = config_token(config, "pad_token");
      spec.pad = pad && *pad ? find_id(spec, **pad) : find_id(spec, "[PAD]");
      spec.special_around = {static_cast<int>(spec.prefix.size()), static_cast<int>(spec.suffix.size())};
    } else {
      resolve_special_ids(config, spec);
      apply_add_flags(config, spec);
      // RoBERTa's byte-level BPE frames a text as <s> ... </s>: truncation keeps both ends, as
      // for BERT. (A TemplateProcessing that only adds BOS/EOS belongs to a decoder: left alone.)
      const json& pp = j.value("post_processor", json());
      if (pp.is_object() && pp.value("type", "") == "RobertaProcessing")
        spec.special_around = {static_cast<int>(spec.prefix.size()), static_cast<int>(spec.suffix.size())};
    }
    for (const auto* frame : {&spec.prefix, &spec.suffix})
      for (int64_t id : *frame)
        OPINE_CHECK_FORMAT(id >= 0 && id < static_cast<int64_t>(spec.vocab.size()), path,
                           ": the post-processor adds id ", id, ", outside the vocabulary");
    spec.kind = wordpiece               ? "wordpiece"
                : byte_level            ? "bpe (byte-level, tokenizer.json)"
                : options.byte_fallback ? "bpe (sentencepiece-style, tokenizer.json)"
                                        : "bpe (tokenizer.json)";
    return make_bpe_tokenizer(std::move(spec));
  } catch (const json::exception& e) {
    throw Error(ErrorKind::kFormat, path + ": " + e.what());
  }
}

std::unique_ptr<Tokenizer> load_vocab_merges(const std::string& vocab_json, const std::string& merges_txt,
                                             VocabMergesStyle style) {
  const json vocab_file = parse_json(vocab_json);
  const fs::path dir = fs::path(vocab_json).parent_path();
  const json config = read_optional_json(dir / "tokenizer_config.json");
  const json added_file = read_optional_json(dir / "added_tokens.json");
  const json special_map = read_optional_json(dir / "special_tokens_map.json");
  try {
    OPINE_CHECK_FORMAT(vocab_file.is_object(), vocab_json, ": expected an object of token -> id");
    if (style == VocabMergesStyle::kAuto) {
      const std::string cls =
          config.is_object() && config.contains("tokenizer_class") && config["tokenizer_class"].is_string()
              ? config["tokenizer_class"].get<std::string>()
              : "GPT2Tokenizer";
      if (cls == "Qwen2Tokenizer" || cls == "Qwen2TokenizerFast") {
        style = VocabMergesStyle::kQwen2;
      } else if (cls == "GPT2Tokenizer" || cls == "GPT2TokenizerFast") {
        style = VocabMergesStyle::kGpt2;
      } else {
        throw Error(ErrorKind::kFormat, (dir / "tokenizer_config.json").string() + ": tokenizer_class '" +
                                            cls +
                                            "' is not one opine reads from vocab.json + merges.txt "
                                            "(GPT2Tokenizer, Qwen2Tokenizer)");
      }
    }
    StringMap<int64_t> vocab;
    for (const auto& [token, id] : vocab_file.items()) {
      OPINE_CHECK_FORMAT(id.is_number_integer(), vocab_json, ": token '", token, "' has no integer id");
      vocab.emplace(token, id.get<int64_t>());
    }

    std::vector<Merge> merges;
    {
      std::ifstream in(merges_txt, std::ios::binary);
      OPINE_CHECK_KIND(in.good(), ErrorKind::kIo, "cannot open ", merges_txt);
      std::string line;
      for (size_t number = 1; std::getline(in, line); ++number) {
        if (!line.empty() && line.back() == '\r') line.pop_back();  // CRLF files (Qwen2)
        if (line.empty() || line.starts_with("#version")) continue;
        const std::string where = detail::concat(merges_txt, ":", number);
        const auto [a, b] = split_merge(line, vocab, where);
        merges.push_back(resolve_merge(a, b, vocab, "", where));
      }
    }

    PipelineSpec spec;
    spec.source = vocab_json;
    spec.vocab = vocab_by_id(vocab, vocab_json);
    const bool qwen = style == VocabMergesStyle::kQwen2;
    // The class defaults (transformers' GPT2Tokenizer / Qwen2Tokenizer), then what the config says.
    std::optional<std::string> bos = qwen ? std::nullopt : std::optional<std::string>("<|endoftext|>");
    std::optional<std::string> eos = "<|endoftext|>", unk = "<|endoftext|>";
    std::optional<std::string> pad = qwen ? std::optional<std::string>("<|endoftext|>") : std::nullopt;
    for (const json* src : {&special_map, &config}) {
      if (const auto v = config_token(*src, "bos_token")) bos = *v;
      if (const auto v = config_token(*src, "eos_token")) eos = *v;
      if (const auto v = config_token(*src, "unk_token")) unk = *v;
      if (const auto v = config_token(*src, "pad_token")) pad = *v;
    }
    std::vector<std::string> specials;
    for (const auto& t : {bos, eos, unk, pad})
      if (t) specials.push_back(*t);
    for (const json* src : {&special_map, &config})
      if (src->is_object() && src->contains("additional_special_tokens"))
        for (const json& t : (*src)["additional_special_tokens"])
          specials.push_back(t.is_string() ? t.get<std::string>() : t.at("content").get<std::string>());

    add_config_added_tokens(config, spec);
    if (added_file.is_object()) {
      for (const auto& [content, id] : added_file.items()) {
        const bool present = std::any_of(spec.added.begin(), spec.added.end(),
                                         [&](const AddedToken& t) { return t.content == content; });
        if (present) continue;
        AddedToken t;
        t.content = content;
        t.id = id.get<int64_t>();
        t.special = std::find(specials.begin(), specials.end(), content) != specials.end();
        t.normalized = !t.special;
        spec.added.push_back(t);
      }
    }
    // Special tokens the files name but do not list as added: transformers adds them (new ids
    // after the vocabulary when they are not in it).
    add_named_specials(spec, specials, vocab);
    for (AddedToken& t : spec.added)
      if (std::find(specials.begin(), specials.end(), t.content) != specials.end()) t.special = true;

    const bool add_prefix_space = config.is_object() && config.value("add_prefix_space", false) == true;
    if (qwen) {
      spec.normalizer = make_unicode_normalizer(UnicodeForm::kNfc);
      std::vector<std::unique_ptr<PreTokenizer>> steps;
      steps.push_back(make_split("", std::make_shared<const Regex>(kQwen2Pattern, merges_txt),
                                 SplitBehavior::kIsolated, false));
      steps.push_back(make_byte_level(add_prefix_space, /*use_regex=*/false));
      spec.pre_tokenizer = make_sequence_pre_tokenizer(std::move(steps));
    } else {
      spec.pre_tokenizer = make_byte_level(add_prefix_space, /*use_regex=*/true);
    }
    spec.decoder = make_byte_level_decoder();
    spec.model = make_bpe_model(spec.vocab, merges, BpeOptions{}, /*keep_first_duplicate=*/false);
    place_added_tokens(spec, vocab_json);
    json ids_config = json::object();
    auto set = [&](const char* key, const std::optional<std::string>& v) {
      ids_config[key] = v ? json(*v) : json(nullptr);
    };
    set("bos_token", bos);
    set("eos_token", eos);
    set("pad_token", pad);
    resolve_special_ids(ids_config, spec);
    const bool add_bos = config.is_object() && config.value("add_bos_token", false) == true;
    const bool add_eos = config.is_object() && config.value("add_eos_token", false) == true;
    if (add_bos && spec.bos) spec.prefix.push_back(*spec.bos);
    if (add_eos && spec.eos) spec.suffix.push_back(*spec.eos);
    spec.kind = qwen ? "bpe (byte-level, vocab.json + merges.txt, qwen2 pre-tokenizer)"
                     : "bpe (byte-level, vocab.json + merges.txt, gpt2 pre-tokenizer)";
    return make_bpe_tokenizer(std::move(spec));
  } catch (const json::exception& e) {
    throw Error(ErrorKind::kFormat, vocab_json + ": " + e.what());
  }
}

namespace bpe {

void add_named_specials(PipelineSpec& spec, const std::vector<std::string>& names, const StringMap<int64_t>& vocab) {
  for (const std::string& s : names) {
    const bool present = std::any_of(spec.added.begin(), spec.added.end(),
                                     [&](const AddedToken& t) { return t.content == s; });
    if (present) continue;
    AddedToken t;
    t.content = s;
    t.special = true;
    const auto it = vocab.find(s);
    int64_t next = static_cast<int64_t>(spec.vocab.size());
    for (const AddedToken& a : spec.added) next = std::max(next, a.id + 1);
    t.id = it != vocab.end() ? it->second : next;
    spec.added.push_back(t);
  }
}

AddedToken parse_added_token(const json& j, int64_t id) {
  AddedToken t;
  t.id = id;
  t.content = j.at("content").get<std::string>();
  t.special = j.value("special", false);
  t.lstrip = j.value("lstrip", false);
  t.rstrip = j.value("rstrip", false);
  t.single_word = j.value("single_word", false);
  t.normalized = j.value("normalized", !t.special);
  return t;
}

}  // namespace bpe

}  // namespace opine::models
