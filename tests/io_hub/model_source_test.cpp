// resolve_model against a fake hub on 127.0.0.1: download, cache reuse, offline mode, resume,
// errors, token, and the huggingface_hub cache layout.
#include "io/model_source.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "io_hub/fake_hub_process.h"

namespace embd::io {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using embd::testing::FakeHubProcess;

const fs::path kFixture = fs::path(EMBD_FIXTURES_DIR) / "models" / "tiny-jina";

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

class HubTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/embd_hub_test_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    tmp_ = tmpl;
    cache_ = tmp_ / "cache";
    // Isolate from the machine's Hugging Face settings (token, cache, offline flag).
    for (const char* name : {"HF_TOKEN", "HF_HUB_OFFLINE", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE",
                             "HF_ENDPOINT", "HF_TOKEN_PATH"}) {
      ::unsetenv(name);
    }
    ::setenv("HF_HOME", (tmp_ / "hf_home").c_str(), 1);
  }
  void TearDown() override {
    for (const char* name : {"HF_HOME", "HF_HUB_OFFLINE", "HF_TOKEN", "HF_HUB_CACHE"}) ::unsetenv(name);
    std::error_code ec;
    fs::remove_all(tmp_, ec);
  }

  // A repo folder made from the fixture, minus `drop`, plus `extra` files (name -> content).
  fs::path make_repo(const std::string& name, const std::vector<std::string>& drop = {},
                     const std::vector<std::pair<std::string, std::string>>& extra = {}) {
    const fs::path dir = tmp_ / "repos" / name;
    fs::create_directories(dir);
    for (const auto& entry : fs::directory_iterator(kFixture)) {
      const std::string file = entry.path().filename().string();
      if (std::find(drop.begin(), drop.end(), file) == drop.end()) fs::copy_file(entry.path(), dir / file);
    }
    for (const auto& [file, text] : extra) write_file(dir / file, text);
    return dir;
  }

  std::unique_ptr<FakeHubProcess> start_hub(const fs::path& repo_dir, std::vector<std::string> more = {}) {
    std::vector<std::string> args = {"--repo", "org/tiny=" + repo_dir.string()};
    args.insert(args.end(), more.begin(), more.end());
    auto hub = std::make_unique<FakeHubProcess>(args);
    EXPECT_TRUE(hub->ok()) << "fake hub did not start (/usr/bin/python3 " << EMBD_FAKE_HUB << ")";
    return hub;
  }

  HubOptions options_for(const FakeHubProcess& hub) const {
    HubOptions options;
    options.endpoint = hub.url();
    options.cache_dir = cache_;
    return options;
  }

  fs::path repo_root() const { return cache_ / "models--org--tiny"; }

  fs::path tmp_;
  fs::path cache_;
};

TEST_F(HubTest, FreshDownloadBuildsHuggingfaceHubLayout) {
  auto hub = start_hub(kFixture);
  ASSERT_TRUE(hub->ok());
  auto dir = resolve_model("org/tiny", options_for(*hub));
  ASSERT_TRUE(dir.ok()) << dir.status().to_string();

  const auto stats = hub->stats();
  const std::string commit = read_file(repo_root() / "refs" / "main");
  ASSERT_EQ(commit.size(), 40u);
  EXPECT_EQ(*dir, repo_root() / "snapshots" / commit);
  for (const char* file : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                           "special_tokens_map.json"}) {
    SCOPED_TRACE(file);
    const fs::path link = *dir / file;
    ASSERT_TRUE(fs::is_symlink(link));
    const std::string etag = stats["etags"]["org/tiny"][file].get<std::string>();
    EXPECT_EQ(fs::read_symlink(link), fs::path("../../blobs") / etag);  // relative, like huggingface_hub
    EXPECT_TRUE(fs::is_regular_file(repo_root() / "blobs" / etag));
    EXPECT_EQ(read_file(link), read_file(kFixture / file));
  }
  // Optional files the hub lacks are remembered, as huggingface_hub's .no_exist does.
  for (const char* file : {"modules.json", "sentence_bert_config.json", "config_sentence_transformers.json"}) {
    EXPECT_TRUE(fs::exists(repo_root() / ".no_exist" / commit / file)) << file;
  }
  EXPECT_FALSE(fs::exists(repo_root() / ".no_exist" / commit / "vocab.txt"));  // tokenizer.json was found
  for (const auto& entry : fs::recursive_directory_iterator(repo_root())) {
    EXPECT_NE(entry.path().extension(), ".incomplete") << "leftover " << entry.path();
  }
  EXPECT_TRUE(fs::exists(cache_ / ".locks" / "models--org--tiny"));
}

TEST_F(HubTest, SecondResolveUsesOnlyTheCache) {
  auto hub = start_hub(kFixture);
  ASSERT_TRUE(hub->ok());
  auto first = resolve_model("org/tiny", options_for(*hub));
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  const std::size_t after_first = hub->request_count();
  EXPECT_GT(after_first, 0u);
  auto second = resolve_model("org/tiny@main", options_for(*hub));
  ASSERT_TRUE(second.ok()) << second.status().to_string();
  EXPECT_EQ(*second, *first);
  EXPECT_EQ(hub->request_count(), after_first);
  // refresh asks the hub again, but downloads nothing new.
  HubOptions refresh = options_for(*hub);
  refresh.refresh = true;
  ASSERT_TRUE(resolve_model("org/tiny", refresh).ok());
  const auto requests = hub->stats()["requests"];
  EXPECT_GT(requests.size(), after_first);
  for (std::size_t i = after_first; i < requests.size(); ++i) {
    EXPECT_EQ(requests[i]["method"], "HEAD") << requests[i].dump();
  }
}

TEST_F(HubTest, ConcurrentResolvesShareOneCache) {
  auto hub = start_hub(kFixture);
  ASSERT_TRUE(hub->ok());
  const HubOptions options = options_for(*hub);
  std::vector<Result<fs::path>> results(4, Result<fs::path>(internal_error("not run")));
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < results.size(); ++i) {
    threads.emplace_back([&, i] { results[i] = resolve_model("org/tiny", options); });
  }
  for (auto& t : threads) t.join();
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(*r, *results[0]);
  }
  EXPECT_EQ(read_file(*results[0] / "model.safetensors"), read_file(kFixture / "model.safetensors"));
  EXPECT_EQ(read_file(*results[0] / "tokenizer.json"), read_file(kFixture / "tokenizer.json"));
  for (const auto& entry : fs::recursive_directory_iterator(repo_root())) {
    EXPECT_EQ(entry.path().string().find(".tmp."), std::string::npos) << "leftover " << entry.path();
  }
}

TEST_F(HubTest, OfflineModeResolvesFromTheCacheWithoutRequests) {
  auto hub = start_hub(kFixture);
  ASSERT_TRUE(hub->ok());
  auto online = resolve_model("org/tiny", options_for(*hub));
  ASSERT_TRUE(online.ok()) << online.status().to_string();
  const std::size_t count = hub->request_count();

  HubOptions offline = options_for(*hub);
  offline.offline = true;
  auto a = resolve_model("org/tiny", offline);
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  EXPECT_EQ(*a, *online);
  ::setenv("HF_HUB_OFFLINE", "1", 1);
  HubOptions by_env = options_for(*hub);
  by_env.refresh = true;  // even a refresh must not reach the network offline
  auto b = resolve_model("org/tiny", by_env);
  ASSERT_TRUE(b.ok()) << b.status().to_string();
  EXPECT_EQ(*b, *online);
  EXPECT_EQ(hub->request_count(), count);
}

TEST_F(HubTest, OfflineModeWithoutCacheNamesWhatIsMissing) {
  HubOptions options;
  options.cache_dir = cache_;
  options.offline = true;
  options.endpoint = "http://127.0.0.1:1";  // never contacted
  auto dir = resolve_model("org/tiny", options);
  ASSERT_FALSE(dir.ok());
  EXPECT_EQ(dir.status().code(), ErrorCode::kNotFound);
  EXPECT_THAT(dir.status().message(), HasSubstr("offline"));
  EXPECT_THAT(dir.status().message(), HasSubstr("refs/main"));

  // A snapshot that lacks the weights: the error names the file.
  const std::string commit(40, 'a');
  write_file(repo_root() / "refs" / "main", commit);
  write_file(repo_root() / "snapshots" / commit / "config.json", "{}");
  auto partial = resolve_model("org/tiny", options);
  ASSERT_FALSE(partial.ok());
  EXPECT_EQ(partial.status().code(), ErrorCode::kNotFound);
  EXPECT_THAT(partial.status().message(), HasSubstr("model.safetensors"));
}

TEST_F(HubTest, ResumesAfterBrokenConnection) {
  auto hub = start_hub(kFixture, {"--break-file", "model.safetensors"});
  ASSERT_TRUE(hub->ok());
  auto dir = resolve_model("org/tiny", options_for(*hub));
  ASSERT_TRUE(dir.ok()) << dir.status().to_string();
  EXPECT_EQ(read_file(*dir / "model.safetensors"), read_file(kFixture / "model.safetensors"));
  const std::string half = "bytes=" + std::to_string(fs::file_size(kFixture / "model.safetensors") / 2) + "-";
  bool resumed = false;
  const auto stats = hub->stats();
  for (const auto& r : stats["requests"]) resumed = resumed || r["range"] == half;
  EXPECT_TRUE(resumed) << "no Range request continuing at half the file";
}

TEST_F(HubTest, ResumesPartialFileOnTheNextRun) {
  auto hub = start_hub(kFixture, {"--break-file", "model.safetensors"});
  ASSERT_TRUE(hub->ok());
  HubOptions options = options_for(*hub);
  options.retries = 0;
  auto failed = resolve_model("org/tiny", options);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), ErrorCode::kNetworkError);
  EXPECT_THAT(failed.status().message(), HasSubstr("model.safetensors"));
  std::size_t partial = 0;
  for (const auto& entry : fs::directory_iterator(repo_root() / "blobs")) {
    if (entry.path().extension() == ".incomplete") partial = fs::file_size(entry.path());
  }
  EXPECT_EQ(partial, fs::file_size(kFixture / "model.safetensors") / 2);

  std::uint64_t last_done = 0, last_total = 0;
  options.progress = [&](std::string_view file, std::uint64_t done, std::uint64_t total) {
    if (file == "model.safetensors") last_done = done, last_total = total;
  };
  auto dir = resolve_model("org/tiny", options);
  ASSERT_TRUE(dir.ok()) << dir.status().to_string();
  EXPECT_EQ(read_file(*dir / "model.safetensors"), read_file(kFixture / "model.safetensors"));
  EXPECT_EQ(last_total, fs::file_size(kFixture / "model.safetensors"));
  EXPECT_EQ(last_done, last_total);
  std::vector<std::string> ranges;
  const auto stats = hub->stats();
  for (const auto& r : stats["requests"]) {
    if (r["path"].get<std::string>().rfind("/_cdn/", 0) == 0) ranges.push_back(r["range"].get<std::string>());
  }
  // The broken first GET, then one resumed where the partial file ended.
  ASSERT_EQ(ranges.size(), 2u);
  EXPECT_EQ(ranges[0], "");
  EXPECT_EQ(ranges[1], "bytes=" + std::to_string(partial) + "-");
}

TEST_F(HubTest, MissingRequiredFileIsAClearNotFound) {
  auto hub = start_hub(make_repo("noconfig", {"config.json"}));
  ASSERT_TRUE(hub->ok());
  auto dir = resolve_model("org/tiny", options_for(*hub));
  ASSERT_FALSE(dir.ok());
  EXPECT_EQ(dir.status().code(), ErrorCode::kNotFound);
  EXPECT_THAT(dir.status().message(), HasSubstr(hub->url() + "/org/tiny/resolve/main/config.json"));
  EXPECT_THAT(dir.status().message(), HasSubstr("404"));

  auto no_weights = make_repo("noweights", {"model.safetensors"});
  auto hub2 = start_hub(no_weights);
  ASSERT_TRUE(hub2->ok());
  HubOptions options = options_for(*hub2);
  options.cache_dir = tmp_ / "cache2";
  auto dir2 = resolve_model("org/tiny", options);
  ASSERT_FALSE(dir2.ok());
  EXPECT_EQ(dir2.status().code(), ErrorCode::kNotFound);
  EXPECT_THAT(dir2.status().message(), HasSubstr("model.safetensors.index.json"));
}

TEST_F(HubTest, UnknownRepoAndRevision) {
  auto hub = start_hub(kFixture);
  ASSERT_TRUE(hub->ok());
  auto repo = resolve_model("org/other", options_for(*hub));
  ASSERT_FALSE(repo.ok());
  EXPECT_EQ(repo.status().code(), ErrorCode::kNotFound);
  auto rev = resolve_model("org/tiny@v9", options_for(*hub));
  ASSERT_FALSE(rev.ok());
  EXPECT_EQ(rev.status().code(), ErrorCode::kNotFound);
  EXPECT_THAT(rev.status().message(), HasSubstr("/resolve/v9/config.json"));
}

TEST_F(HubTest, TokenIsSentAndRequired) {
  auto hub = start_hub(kFixture, {"--token", "s3cret"});
  ASSERT_TRUE(hub->ok());
  auto denied = resolve_model("org/tiny", options_for(*hub));
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.status().code(), ErrorCode::kNetworkError);
  EXPECT_THAT(denied.status().message(), HasSubstr("401"));
  EXPECT_THAT(denied.status().message(), HasSubstr("HF_TOKEN"));

  ::setenv("HF_TOKEN", "s3cret", 1);
  auto dir = resolve_model("org/tiny", options_for(*hub));
  ASSERT_TRUE(dir.ok()) << dir.status().to_string();
  std::size_t authorized = 0;
  const auto stats = hub->stats();
  for (const auto& r : stats["requests"]) {
    if (r["path"].get<std::string>().find("/resolve/") != std::string::npos && r["authorization"] == "Bearer s3cret") {
      ++authorized;
    }
  }
  EXPECT_GE(authorized, 5u);
}

TEST_F(HubTest, TokenFromHfHomeFile) {
  auto hub = start_hub(kFixture, {"--token", "filetoken"});
  ASSERT_TRUE(hub->ok());
  write_file(tmp_ / "hf_home" / "token", "filetoken\n");
  auto dir = resolve_model("org/tiny", options_for(*hub));
  ASSERT_TRUE(dir.ok()) << dir.status().to_string();
}

TEST_F(HubTest, SentenceTransformersModulesAndShardedWeights) {
  const std::string weights = read_file(kFixture / "model.safetensors");
  const std::string index =
      R"({"metadata": {}, "weight_map": {"a": "model-00001-of-00002.safetensors",
          "b": "model-00002-of-00002.safetensors", "c": "model-00001-of-00002.safetensors"}})";
  const std::string modules = R"([{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
      {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
      {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}])";
  auto repo = make_repo("st", {"model.safetensors"},
                        {{"model.safetensors.index.json", index},
                         {"model-00001-of-00002.safetensors", weights.substr(0, 1000)},
                         {"model-00002-of-00002.safetensors", weights.substr(1000, 500)},
                         {"modules.json", modules},
                         {"1_Pooling/config.json", R"({"pooling_mode_mean_tokens": true})"},
                         {"sentence_bert_config.json", R"({"max_seq_length": 8192})"}});
  auto hub = start_hub(repo);
  ASSERT_TRUE(hub->ok());
  auto dir = resolve_model("org/tiny", options_for(*hub));
  ASSERT_TRUE(dir.ok()) << dir.status().to_string();
  EXPECT_EQ(read_file(*dir / "model-00002-of-00002.safetensors"), weights.substr(1000, 500));
  EXPECT_EQ(read_file(*dir / "1_Pooling" / "config.json"), R"({"pooling_mode_mean_tokens": true})");
  EXPECT_EQ(fs::read_symlink(*dir / "1_Pooling" / "config.json").parent_path(), fs::path("../../../blobs"));
  EXPECT_TRUE(fs::is_regular_file(*dir / "sentence_bert_config.json"));
  const std::string commit = dir->filename().string();
  EXPECT_TRUE(fs::exists(repo_root() / ".no_exist" / commit / "model.safetensors"));
  EXPECT_TRUE(fs::exists(repo_root() / ".no_exist" / commit / "2_Normalize" / "config.json"));

  // Offline afterwards: the .no_exist entries stand in for the hub's 404s.
  HubOptions offline = options_for(*hub);
  offline.offline = true;
  const std::size_t count = hub->request_count();
  auto again = resolve_model("org/tiny@" + commit, offline);
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  EXPECT_EQ(*again, *dir);
  EXPECT_EQ(hub->request_count(), count);
}

TEST_F(HubTest, UnsafeNamesFromTheRepoAreRejected) {
  auto repo = make_repo("evil", {"model.safetensors"},
                        {{"model.safetensors.index.json", R"({"weight_map": {"a": "../../../etc/passwd"}})"}});
  auto hub = start_hub(repo);
  ASSERT_TRUE(hub->ok());
  auto dir = resolve_model("org/tiny", options_for(*hub));
  ASSERT_FALSE(dir.ok());
  EXPECT_EQ(dir.status().code(), ErrorCode::kInvalidModel);
  EXPECT_THAT(dir.status().message(), HasSubstr("weight_map['a']"));
}

TEST_F(HubTest, CacheDirFromEnvironment) {
  auto hub = start_hub(kFixture);
  ASSERT_TRUE(hub->ok());
  ::setenv("HF_HUB_CACHE", (tmp_ / "envcache").c_str(), 1);
  HubOptions options;
  options.endpoint = hub->url();
  auto dir = resolve_model("org/tiny", options);
  ASSERT_TRUE(dir.ok()) << dir.status().to_string();
  EXPECT_TRUE(fs::is_regular_file(tmp_ / "envcache" / "models--org--tiny" / "refs" / "main"));
  ::unsetenv("HF_HUB_CACHE");
  auto via_home = resolve_model("org/tiny", options);  // $HF_HOME/hub
  ASSERT_TRUE(via_home.ok()) << via_home.status().to_string();
  EXPECT_TRUE(fs::is_regular_file(tmp_ / "hf_home" / "hub" / "models--org--tiny" / "refs" / "main"));
}

TEST_F(HubTest, UnreachableEndpointIsANetworkError) {
  HubOptions options;
  options.cache_dir = cache_;
  options.endpoint = "http://127.0.0.1:1";
  options.retries = 0;
  auto dir = resolve_model("org/tiny", options);
  ASSERT_FALSE(dir.ok());
  EXPECT_EQ(dir.status().code(), ErrorCode::kNetworkError);
  EXPECT_THAT(dir.status().message(), HasSubstr("http://127.0.0.1:1/org/tiny/resolve/main/config.json"));
}

TEST_F(HubTest, LocalDirectoriesAndBadIds) {
  HubOptions options;
  options.cache_dir = cache_;
  options.offline = true;
  auto local = resolve_model(kFixture.string(), options);
  ASSERT_TRUE(local.ok()) << local.status().to_string();
  EXPECT_TRUE(fs::equivalent(*local, kFixture));
  EXPECT_TRUE(is_local_model_dir(kFixture.string()));
  EXPECT_FALSE(is_local_model_dir("org/tiny"));

  auto missing = resolve_model("/no/such/model/dir", options);
  EXPECT_EQ(missing.status().code(), ErrorCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("/no/such/model/dir"));
  auto no_config = resolve_model(tmp_.string(), options);
  EXPECT_EQ(no_config.status().code(), ErrorCode::kNotFound);
  EXPECT_THAT(no_config.status().message(), HasSubstr("config.json"));

  for (const char* bad : {"org/na me", "org--x/name", "org/name@", "org/name@../x", "-org/name"}) {
    auto r = resolve_model(bad, options);
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument) << bad << ": " << r.status().to_string();
  }
  HubOptions conflicting = options;
  conflicting.revision = "v2";
  EXPECT_EQ(resolve_model("org/name@v1", conflicting).status().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace embd::io
