// The HDF5 token cache: round trip, reuse, rebuild on every kind of change, atomic writes under a
// killed writer, byte-identical rebuilds, and files that must not be trusted.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <iterator>

#include "core/error.h"
#include "core/hdf5.h"
#include "data/cache.h"
#include "data/pipeline.h"
#include "models/tokenizer.h"
#include "test_util.h"

namespace opine::data {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("opine-cache-" + std::to_string(::getpid()) + "-" +
                                               std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "-" +
                                               ::testing::UnitTest::GetInstance()->current_test_info()->name());
  TempDir() { fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
};

TokenCache sample_cache(int n, const std::string& hash = "abc") {
  TokenCache c;
  c.content_hash = hash;
  c.classes = {"against", "favor"};
  c.description = R"({"dataset": "toy"})";
  for (const char* split : {"train", "val"}) {
    CachedSplit& s = c.splits[split];
    for (int i = 0; i < n; ++i) {
      TokenizedExample e;
      for (int k = 0; k <= i % 7; ++k) e.ids.push_back(100 * i + k);
      e.prompt_length = int(e.ids.size()) - 1;
      e.label = i % 2;
      e.target = float(i) / 3.0f;
      e.augmented = i % 5 == 0;
      s.append(e, i + 2, 0);
    }
  }
  return c;
}

std::string bytes_of(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void expect_equal(const TokenCache& a, const TokenCache& b) {
  EXPECT_EQ(a.content_hash, b.content_hash);
  EXPECT_EQ(a.classes, b.classes);
  EXPECT_EQ(a.description, b.description);
  ASSERT_EQ(a.splits.size(), b.splits.size());
  for (const auto& [name, s] : a.splits) {
    const CachedSplit& t = b.splits.at(name);
    EXPECT_EQ(s.ids, t.ids);
    EXPECT_EQ(s.offsets, t.offsets);
    EXPECT_EQ(s.prompt_lengths, t.prompt_lengths);
    EXPECT_EQ(s.labels, t.labels);
    ASSERT_EQ(s.targets.size(), t.targets.size());  // bitwise: classification targets are NaN
    EXPECT_EQ(std::memcmp(s.targets.data(), t.targets.data(), s.targets.size() * sizeof(float)), 0);
    EXPECT_EQ(s.rows, t.rows);
    EXPECT_EQ(s.augmented, t.augmented);
  }
}

TEST(TokenCache, RoundTripsAndWritesTheSameBytesTwice) {
  TempDir dir;
  const TokenCache c = sample_cache(50);
  write_cache(dir.path / "a.h5", c);
  write_cache(dir.path / "b.h5", c);
  const CacheRead r = read_cache(dir.path / "a.h5", "abc");
  ASSERT_EQ(r.status, CacheStatus::kValid) << r.why;
  expect_equal(c, r.cache);
  EXPECT_EQ(r.cache.splits.at("train").example(3).ids, (std::vector<int32_t>{300, 301, 302, 303}));
  EXPECT_EQ(bytes_of(dir.path / "a.h5"), bytes_of(dir.path / "b.h5"));
  EXPECT_EQ(read_cache(dir.path / "a.h5", "other").status, CacheStatus::kStale);
  EXPECT_EQ(read_cache(dir.path / "missing.h5").status, CacheStatus::kMissing);
}

TEST(TokenCache, ReusedWhenCurrentRebuiltWhenStaleOrAsked) {
  TempDir dir;
  int builds = 0;
  auto build = [&] {
    ++builds;
    return sample_cache(10 + builds);
  };
  const fs::path p = dir.path / "c.h5";
  EXPECT_EQ(load_or_build_cache(p, "h1", false, build).splits.at("train").size(), 11u);
  EXPECT_EQ(load_or_build_cache(p, "h1", false, build).splits.at("train").size(), 11u);
  EXPECT_EQ(builds, 1);
  EXPECT_EQ(load_or_build_cache(p, "h2", false, build).content_hash, "h2");
  EXPECT_EQ(builds, 2);
  load_or_build_cache(p, "h2", true, build);
  EXPECT_EQ(builds, 3);
}

TEST(TokenCache, AKilledWriterLeavesTheOldCacheIntact) {
  TempDir dir;
  const fs::path p = dir.path / "k.h5";
  write_cache(p, sample_cache(20, "old"));
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    write_cache(p, sample_cache(5000, "new"), [] { raise(SIGKILL); });
    _exit(0);  // not reached
  }
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  const CacheRead r = read_cache(p);
  ASSERT_EQ(r.status, CacheStatus::kValid) << r.why;
  EXPECT_EQ(r.cache.content_hash, "old");
  // The dead writer's temporary file is swept by the next write.
  write_cache(p, sample_cache(3, "next"));
  for (const auto& entry : fs::directory_iterator(dir.path))
    EXPECT_EQ(entry.path().filename().string().find(".tmp."), std::string::npos) << entry.path();
}

TEST(TokenCache, TruncatedFilesAreRebuiltForeignFilesRefused) {
  TempDir dir;
  const fs::path p = dir.path / "t.h5";
  write_cache(p, sample_cache(200, "h"));
  fs::resize_file(p, fs::file_size(p) / 2);
  EXPECT_EQ(read_cache(p, "h").status, CacheStatus::kCorrupt);
  int builds = 0;
  load_or_build_cache(p, "h", false, [&] {
    ++builds;
    return sample_cache(3);
  });
  EXPECT_EQ(builds, 1);
  EXPECT_EQ(read_cache(p, "h").status, CacheStatus::kValid);

  std::ofstream(dir.path / "notes.h5") << "my own notes";
  try {
    read_cache(dir.path / "notes.h5");
    FAIL() << "a foreign file was read";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not an HDF5 file"), std::string::npos) << e.what();
  }
  {
    h5::Handle f(H5Fcreate((dir.path / "other.h5").c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
  }
  try {
    load_or_build_cache(dir.path / "other.h5", "h", false, [] { return sample_cache(1); });
    FAIL() << "another program's HDF5 file was overwritten";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not an opine cache"), std::string::npos) << e.what();
  }
}

// ---- the pipeline on real data --------------------------------------------------------------

class PipelineRealData : public ::testing::Test {
 protected:
  void SetUp() override {
    OPINE_REQUIRE_FILE(tokenizer_path());
    tokenizer_ = models::load_tokenizer(tokenizer_path());
    options_.spec = (fs::path(OPINE_SOURCE_DIR) / "experiments/datasets/stance-abortion-binary.yaml").string();
    options_.data_root = test::data_root().string();
    options_.cache_dir = dir_.path.string();
    options_.max_length = 96;
    encoder_.tokenizer = tokenizer_.get();
    encoder_.task.instruction = "Tweet: {text}\nStance on {topic}?";
    encoder_.task.labels = {"against", "favor"};
    encoder_.max_length = options_.max_length;
  }
  static fs::path tokenizer_path() { return test::data_root() / "tokenizers/llama2-spm-llama2.c/tokenizer.model"; }
  std::string hash() { return data_content_hash(resolve_spec(options_), options_, encoder_); }

  TempDir dir_;
  std::unique_ptr<models::Tokenizer> tokenizer_;
  DataOptions options_;
  Encoder encoder_;
};

TEST_F(PipelineRealData, EveryKindOfChangeChangesTheHash) {
  const std::string base = hash();
  EXPECT_EQ(hash(), base);
  std::vector<std::string> seen = {base};
  auto changed = [&](const char* what) {
    const std::string h = hash();
    for (const std::string& s : seen) EXPECT_NE(h, s) << what;
    seen.push_back(h);
  };
  options_.normalize.hashtags = "segment";
  changed("normalisation");
  options_.augment.enabled = true;
  options_.augment.alpha_sr = options_.augment.alpha_ri = 0;  // no WordNet needed
  changed("augmentation on");
  options_.augment.seed = 99;
  changed("augmentation seed");
  encoder_.max_length = 64;
  changed("max length");
  encoder_.task.instruction = "{text}";
  changed("template");
  encoder_.format = "sft";
  changed("format");
  options_.dataset = resolve_spec(options_);
  options_.spec.clear();
  options_.dataset.label_map["none"] = "favor";
  changed("spec");
  // The source bytes: the same spec over a copied data root with one tweet edited.
  const fs::path root = dir_.path / "root";
  const fs::path topic = root / "tweeteval/datasets/stance/abortion";
  fs::create_directories(topic);
  fs::copy(test::data_root() / "tweeteval/datasets/stance/abortion", topic, fs::copy_options::recursive);
  options_.data_root = root.string();
  EXPECT_EQ(hash(), seen.back()) << "the data root's location is not content";
  std::ofstream(topic / "val_text.txt", std::ios::app) << "";
  EXPECT_EQ(hash(), seen.back());
  std::ofstream(topic / "val_text.txt", std::ios::app) << "x";
  changed("source bytes");
}

TEST_F(PipelineRealData, BuildsOnceThenHitsAndEncodesEveryKeptRow) {
  PreparedData a = prepare_data(options_, encoder_);
  const CacheRead before = read_cache(a.path);
  ASSERT_EQ(before.status, CacheStatus::kValid);
  const auto mtime = fs::last_write_time(a.path);
  PreparedData b = prepare_data(options_, encoder_);
  EXPECT_EQ(fs::last_write_time(b.path), mtime) << "a current cache was rebuilt";
  expect_equal(a.cache, b.cache);
  const Dataset d = load_dataset(resolve_spec(options_));
  for (const char* split : {"train", "val"}) {
    const CachedSplit& s = a.cache.splits.at(split);
    ASSERT_EQ(s.size(), d.splits.at(split).size()) << split;
    for (size_t i = 0; i < s.size(); ++i) {
      EXPECT_EQ(s.labels[i], d.splits.at(split)[i].label);
      EXPECT_LE(s.length(i), options_.max_length);
      EXPECT_EQ(s.ids[s.offsets[i]], *tokenizer_->bos_id());
    }
  }
  // Rebuilding from scratch writes the same bytes.
  const std::string first = bytes_of(a.path);
  options_.rebuild = true;
  prepare_data(options_, encoder_);
  EXPECT_EQ(bytes_of(a.path), first);
}

TEST_F(PipelineRealData, SftExamplesMaskThePromptAndEndWithTheAnswer) {
  encoder_.format = "sft";
  Example e;
  e.text = "We must protect the unborn";
  e.topic = "abortion";
  e.label = 0;
  const TokenizedExample t = encode_example(e, encoder_);
  ASSERT_GT(t.prompt_length, 0);
  ASSERT_LT(size_t(t.prompt_length), t.ids.size());
  const std::vector<int64_t> answer(t.ids.begin() + t.prompt_length, t.ids.end());
  EXPECT_EQ(tokenizer_->decode(answer, true).find("against"), 0u) << tokenizer_->decode(answer);
}

}  // namespace
}  // namespace opine::data
