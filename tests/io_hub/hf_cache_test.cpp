// Model id parsing, name validation and the cache layout helpers.
#include "io/hf_cache.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace embd::io {
namespace {

namespace fs = std::filesystem;

TEST(ParseRepoId, RevisionFromIdOrOption) {
  auto plain = parse_repo_id("jinaai/jina-embeddings-v2-small-en", "");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->repo, "jinaai/jina-embeddings-v2-small-en");
  EXPECT_EQ(plain->revision, "main");
  auto at = parse_repo_id("jinaai/jina-embeddings-v2-small-en@v1.0", "");
  ASSERT_TRUE(at.ok());
  EXPECT_EQ(at->revision, "v1.0");
  auto opt = parse_repo_id("org/name", "refs/pr/1");
  ASSERT_TRUE(opt.ok());
  EXPECT_EQ(opt->revision, "refs/pr/1");
  EXPECT_TRUE(parse_repo_id("bert-base-uncased", "").ok());  // legacy ids without an org
  EXPECT_TRUE(parse_repo_id("org/name@v1", "v1").ok());
  EXPECT_EQ(parse_repo_id("org/name@v1", "v2").status().code(), ErrorCode::kInvalidArgument);
  for (const char* bad : {"", "org/", "/name", "org/name/extra", "org/na..me", "org/name@", "org/name@a/../b",
                          "org/name.", "o rg/name"}) {
    EXPECT_EQ(parse_repo_id(bad, "").status().code(), ErrorCode::kInvalidArgument) << bad;
  }
}

TEST(NameValidation, RepoFilesAndComponents) {
  EXPECT_TRUE(is_safe_repo_file("config.json"));
  EXPECT_TRUE(is_safe_repo_file("1_Pooling/config.json"));
  for (const char* bad : {"", "/etc/passwd", "../x", "a/../b", "a//b", "a/", "./a", "a\\b"}) {
    EXPECT_FALSE(is_safe_repo_file(bad)) << bad;
  }
  EXPECT_TRUE(is_safe_component("0123abcdef"));
  for (const char* bad : {"", ".", "..", "a/b", "a b", "x\n"}) EXPECT_FALSE(is_safe_component(bad)) << bad;
  EXPECT_TRUE(is_commit_hash(std::string(40, 'a')));
  EXPECT_FALSE(is_commit_hash(std::string(40, 'A')));
  EXPECT_FALSE(is_commit_hash(std::string(39, 'a')));
  EXPECT_FALSE(is_commit_hash(std::string(39, 'a') + "g"));
}

TEST(HfCacheRepo, LayoutRefsLinksAndMisses) {
  char tmpl[] = "/tmp/embd_hf_cache_XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const fs::path cache = tmpl;
  HfCacheRepo repo(cache, "org/name");
  EXPECT_EQ(repo.root(), cache / "models--org--name");
  EXPECT_EQ(repo.lock_path("e1"), cache / ".locks" / "models--org--name" / "e1.lock");
  const std::string commit(40, 'b');
  EXPECT_FALSE(repo.read_ref("main").has_value());
  ASSERT_TRUE(repo.write_ref("main", commit).ok());
  EXPECT_EQ(repo.read_ref("main"), commit);
  ASSERT_TRUE(repo.write_ref(commit, commit).ok());  // no ref file for a bare commit
  EXPECT_FALSE(fs::exists(repo.root() / "refs" / commit));

  fs::create_directories(repo.blob_path("e1").parent_path());
  std::ofstream(repo.blob_path("e1")) << "hello";
  ASSERT_TRUE(repo.link_blob(commit, "a/b/file.json", "e1").ok());
  EXPECT_EQ(fs::read_symlink(repo.snapshot_dir(commit) / "a/b/file.json"), fs::path("../../../../blobs/e1"));
  EXPECT_TRUE(repo.has_file(commit, "a/b/file.json"));
  EXPECT_FALSE(repo.has_file(commit, "other.json"));

  EXPECT_FALSE(repo.is_known_missing(commit, "x/y.json"));
  ASSERT_TRUE(repo.mark_missing(commit, "x/y.json").ok());
  EXPECT_TRUE(repo.is_known_missing(commit, "x/y.json"));

  // A dangling snapshot link (blob deleted) is not a cached file.
  fs::remove(repo.blob_path("e1"));
  EXPECT_FALSE(repo.has_file(commit, "a/b/file.json"));
  fs::remove_all(cache);
}

TEST(HubEnvironment, CacheDirPrecedence) {
  ::setenv("HF_HUB_CACHE", "/x/hub_cache", 1);
  ::setenv("HF_HOME", "/x/home", 1);
  EXPECT_EQ(default_hub_cache_dir(), fs::path("/x/hub_cache"));
  ::unsetenv("HF_HUB_CACHE");
  ::unsetenv("HUGGINGFACE_HUB_CACHE");
  EXPECT_EQ(default_hub_cache_dir(), fs::path("/x/home/hub"));
  ::unsetenv("HF_HOME");
  ::unsetenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  const std::string saved_home = home != nullptr ? home : "";
  ::setenv("HOME", "/x/user", 1);
  EXPECT_EQ(default_hub_cache_dir(), fs::path("/x/user/.cache/huggingface/hub"));
  ::setenv("HOME", saved_home.c_str(), 1);
}

}  // namespace
}  // namespace embd::io
