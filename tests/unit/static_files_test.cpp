#include "http/static_files.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support/test_support.h"

namespace peerstack::http {
namespace {

class StaticFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::mkdir(dir_.Sub("front").c_str(), 0755);
    ::mkdir(dir_.Sub("front/docs").c_str(), 0755);
    test::WriteFile(dir_.Sub("front/index.html"), "<html>index</html>");
    test::WriteFile(dir_.Sub("front/app.js"), "console.log(1)");
    test::WriteFile(dir_.Sub("front/docs/index.html"), "docs");
    test::WriteFile(dir_.Sub("secret.txt"), "TOP-SECRET");
    ::symlink(dir_.Sub("secret.txt").c_str(), dir_.Sub("front/link.txt").c_str());
    files_ = std::make_unique<StaticFiles>(StaticFilesOptions{dir_.Sub("front")});
  }

  Response Get(const std::string& path, std::vector<Header> headers = {}) {
    Request r;
    r.method = "GET";
    r.path = path;
    r.headers = std::move(headers);
    return files_->Handle(r);
  }

  test::TempDir dir_;
  std::unique_ptr<StaticFiles> files_;
};

TEST_F(StaticFilesTest, ServesFilesWithMimeTypes) {
  Response r = Get("/");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "<html>index</html>");
  EXPECT_EQ(*r.header("content-type"), "text/html; charset=utf-8");
  r = Get("/app.js");
  EXPECT_EQ(*r.header("content-type"), "text/javascript; charset=utf-8");
  EXPECT_EQ(Get("/docs/").body, "docs");
  EXPECT_EQ(Get("/docs").body, "docs");
}

TEST_F(StaticFilesTest, AnswersNotModifiedOnMatchingEtag) {
  const Response first = Get("/app.js");
  const std::string etag = *first.header("etag");
  EXPECT_EQ(Get("/app.js", {{"if-none-match", etag}}).status, 304);
  EXPECT_EQ(Get("/app.js", {{"if-none-match", "\"other\", W/" + etag}}).status, 304);
  EXPECT_EQ(Get("/app.js", {{"if-none-match", "\"other\""}}).status, 200);
}

TEST_F(StaticFilesTest, NoticesChangedFiles) {
  const std::string etag = *Get("/app.js").header("etag");
  test::WriteFile(dir_.Sub("front/app.js"), "console.log(2) // changed, longer");
  // Revalidation against the disk happens at most once a second.
  EXPECT_TRUE(test::WaitFor([&] { return *Get("/app.js").header("etag") != etag; },
                            std::chrono::seconds(5)));
}

TEST_F(StaticFilesTest, FallsBackToIndexForClientRoutesOnly) {
  EXPECT_EQ(Get("/some/client/route").body, "<html>index</html>");
  EXPECT_EQ(Get("/missing.js").status, 404);
  EXPECT_EQ(Get("/api/thing").status, 404);
  EXPECT_EQ(Get("/p2p/x").status, 404);
}

TEST_F(StaticFilesTest, RefusesTraversalInEveryEncoding) {
  for (const char* path :
       {"/../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E/secret.txt", "/docs/../../secret.txt",
        "/..%2fsecret.txt", "/%2e%2e%2fsecret.txt", "/docs/%2e%2e/%2e%2e/secret.txt",
        "/..\\secret.txt", "/%00", "/app.js%00.html", "/%zz", "/./app.js"}) {
    const Response r = Get(path);
    EXPECT_TRUE(r.status == 400 || r.status == 404) << path << " -> " << r.status;
    EXPECT_EQ(r.body.find("TOP-SECRET"), std::string::npos) << path;
  }
}

TEST_F(StaticFilesTest, RefusesSymlinksLeavingTheRoot) {
  const Response r = Get("/link.txt");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body.find("TOP-SECRET"), std::string::npos);
}

TEST_F(StaticFilesTest, AnswersOnlyGetAndHead) {
  Request r;
  r.method = "POST";
  r.path = "/";
  EXPECT_EQ(files_->Handle(r).status, 405);
}

TEST(MimeTypes, KnowsCommonExtensions) {
  EXPECT_EQ(MimeTypeFor("a/b.CSS"), "text/css; charset=utf-8");
  EXPECT_EQ(MimeTypeFor("x.wasm"), "application/wasm");
  EXPECT_EQ(MimeTypeFor("noext"), "application/octet-stream");
  EXPECT_EQ(MimeTypeFor("dir.d/noext"), "application/octet-stream");
}

TEST(PercentDecode, DecodesAndRejectsMalformed) {
  std::string out;
  EXPECT_TRUE(PercentDecode("/a%20b%2F", &out));
  EXPECT_EQ(out, "/a b/");
  EXPECT_FALSE(PercentDecode("/a%2", &out));
  EXPECT_FALSE(PercentDecode("/a%g0", &out));
}

}  // namespace
}  // namespace peerstack::http
