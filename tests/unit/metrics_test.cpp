// The metrics writer (core/base/metrics.h) and the strict format reader the tests of GET
// /metrics use (tests/support/prometheus.h): what one writes the other accepts, and the reader
// refuses what the format forbids.
#include "base/metrics.h"

#include <gtest/gtest.h>

#include "support/prometheus.h"

namespace peerstack::metrics {
namespace {

TEST(Metrics, TheWritersPageIsValidTextFormat) {
  Writer w;
  w.Gauge("peerstack_build_info", "The version.", 1, {{"version", "0.1.0"}});
  w.Counter("peerstack_http_requests_total", "Answers.", 7,
            {{"listener", "public"}, {"code", "2xx"}});
  w.Family("peerstack_members", "gauge", "Members.");
  w.Sample("peerstack_members", {{"liveness", "online"}}, 2);
  w.Sample("peerstack_members", {{"liveness", "offline"}}, 1);
  w.Gauge("peerstack_odd", "A label with \"quotes\", a \\ and a\nnewline.", 0.25,
          {{"note", "say \"hi\"\\\n"}});
  AtomicHistogram h({0.1, 1, 10});
  h.Observe(0.05);
  h.Observe(0.5);
  h.Observe(0.5);
  h.Observe(100);
  w.Family("peerstack_join_duration_seconds", "histogram", "Joins.");
  w.Histogram("peerstack_join_duration_seconds", h.Read());
  w.Family("peerstack_members", "gauge", "again: ignored");

  test::PromPage page;
  std::string error;
  ASSERT_TRUE(test::ParsePrometheus(w.text(), &page, &error)) << error << "\n" << w.text();
  EXPECT_EQ(page.types["peerstack_members"], "gauge");
  EXPECT_EQ(page.Find("peerstack_members", {{"liveness", "offline"}})->value, 1);
  EXPECT_EQ(page.Find("peerstack_odd")->labels.at("note"), "say \"hi\"\\\n");
  EXPECT_EQ(page.Find("peerstack_join_duration_seconds_bucket", {{"le", "1"}})->value, 3);
  EXPECT_EQ(page.Find("peerstack_join_duration_seconds_bucket", {{"le", "+Inf"}})->value, 4);
  EXPECT_EQ(page.Find("peerstack_join_duration_seconds_count")->value, 4);
  EXPECT_NEAR(page.Find("peerstack_join_duration_seconds_sum")->value, 101.05, 1e-6);
}

TEST(Metrics, TheReaderRefusesWhatTheFormatForbids) {
  const char* bad[] = {
      "x 1\n",                                            // no TYPE
      "# TYPE x gauge\nx{a=\"1\" 1\n",                    // unterminated labels
      "# TYPE x gauge\nx{a=\"\\t\"} 1\n",                 // unknown escape
      "# TYPE x gauge\nx one\n",                          // bad value
      "# TYPE x gauge\n# TYPE x gauge\nx 1\n",            // TYPE twice
      "# TYPE x_count counter\nx_count 1\n",              // counter without _total
      "# TYPE x gauge\n# TYPE y gauge\nx 1\ny 1\nx 2\n",  // a family split
      "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n",
      "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_count 1\n",  // no +Inf
      "# TYPE x gauge\nx 1",                                    // no final newline
      "# TYPE 1x gauge\n",                                      // bad name
  };
  for (const char* text : bad) {
    test::PromPage page;
    std::string error;
    EXPECT_FALSE(test::ParsePrometheus(text, &page, &error)) << text;
  }
}

}  // namespace
}  // namespace peerstack::metrics
