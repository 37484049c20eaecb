// --gate of `aitw bench kernels|pipeline` and `aitw replay`: the parser and the check, without a benchmark.
#include "aitw/bench/gates.hpp"

#include <gtest/gtest.h>

#include <sstream>

namespace aitw::bench {
namespace {

using Metrics = std::vector<std::pair<std::string, double>>;

TEST(ParseGates, ReadsNameOperatorAndNumberOfEveryTerm) {
  const auto terms = parse_gates("p95_ms<150, fps_processed >= 10 ,drop_pct<=5,speedup_2>.5");
  ASSERT_EQ(terms.size(), 4u);
  EXPECT_EQ(terms[0].name, "p95_ms");
  EXPECT_EQ(terms[0].op, "<");
  EXPECT_EQ(terms[0].value, 150);
  EXPECT_EQ(terms[1].name, "fps_processed");
  EXPECT_EQ(terms[1].op, ">=");
  EXPECT_EQ(terms[1].value, 10);
  EXPECT_EQ(terms[2].name, "drop_pct");
  EXPECT_EQ(terms[2].op, "<=");
  EXPECT_EQ(terms[2].value, 5);
  EXPECT_EQ(terms[3].name, "speedup_2");
  EXPECT_EQ(terms[3].op, ">");
  EXPECT_DOUBLE_EQ(terms[3].value, 0.5);
}

TEST(ParseGates, EmptyExpressionHasNoTerms) {
  EXPECT_TRUE(parse_gates("").empty());
}

TEST(ParseGates, MalformedTermIsNamedInTheError) {
  for (const std::string bad :
       {"p95<<3", "p95_ms", "p95_ms<abc", "p95_ms=3", "<3", "p95 ms<3", "p95_ms<-1"}) {
    SCOPED_TRACE(bad);
    try {
      parse_gates("fps_processed>=10," + bad);
      ADD_FAILURE() << "no error";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("'" + bad + "'"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("--gate"), std::string::npos) << e.what();
    }
  }
  // An empty term (a doubled or trailing comma) is malformed too.
  EXPECT_THROW(parse_gates("a<1,,b<2"), std::invalid_argument);
  EXPECT_THROW(parse_gates("a<1,"), std::invalid_argument);
}

TEST(ParseGates, OrLogReturnsFalseOnAMalformedTerm) {
  std::vector<GateTerm> terms{{"stale", "<", 1}};
  EXPECT_FALSE(parse_gates_or_log("p95<<3", terms));
  EXPECT_TRUE(parse_gates_or_log("p95_ms<3", terms));
  ASSERT_EQ(terms.size(), 1u);
  EXPECT_EQ(terms[0].name, "p95_ms");
}

// Each operator on both sides of its bound, and at the bound itself.
TEST(CheckGates, EveryOperatorAtAndAroundItsBound) {
  const Metrics m{{"v", 10}};
  auto failures = [&](const std::string& expr) {
    std::ostringstream out;
    return check_gates(parse_gates(expr), m, /*prefix_match=*/false, out);
  };
  EXPECT_EQ(failures("v<11"), 0);
  EXPECT_EQ(failures("v<10"), 1);
  EXPECT_EQ(failures("v<=10"), 0);
  EXPECT_EQ(failures("v<=9.99"), 1);
  EXPECT_EQ(failures("v>9"), 0);
  EXPECT_EQ(failures("v>10"), 1);
  EXPECT_EQ(failures("v>=10"), 0);
  EXPECT_EQ(failures("v>=10.01"), 1);
  EXPECT_EQ(failures("v<11,v>10,v>=11"), 2);
}

TEST(CheckGates, PrintsOneLinePerCheck) {
  std::ostringstream out;
  EXPECT_EQ(check_gates(parse_gates("p95_ms<150,fps_processed>=10"), {{"p95_ms", 120}, {"fps_processed", 8}},
                        false, out),
            1);
  EXPECT_NE(out.str().find("gate ok: p95_ms = 120 meets p95_ms<150\n"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("GATE FAILED: fps_processed = 8 misses fps_processed>=10\n"), std::string::npos)
      << out.str();
}

TEST(CheckGates, ExactNamesUnlessPrefixMatching) {
  const Metrics m{{"decode_nms_bus", 6}, {"decode_nms_crowd", 4}, {"preprocess", 9}};
  std::ostringstream exact;
  // Without prefix matching "decode_nms" names no metric: that fails, whatever the values.
  EXPECT_EQ(check_gates(parse_gates("decode_nms>=1"), m, false, exact), 1);
  EXPECT_NE(exact.str().find("GATE FAILED: no metric named 'decode_nms'"), std::string::npos) << exact.str();
  std::ostringstream prefix;
  // With it, the term applies to every metric it starts: one of the two misses.
  EXPECT_EQ(check_gates(parse_gates("decode_nms>=5"), m, true, prefix), 1);
  EXPECT_NE(prefix.str().find("gate ok: decode_nms_bus"), std::string::npos) << prefix.str();
  EXPECT_NE(prefix.str().find("GATE FAILED: decode_nms_crowd"), std::string::npos) << prefix.str();
  std::ostringstream whole;
  EXPECT_EQ(check_gates(parse_gates("preprocess>=5"), m, true, whole), 0);  // a full name is a prefix too
}

TEST(CheckGates, TermMatchingNoMetricFails) {
  const Metrics m{{"p95_ms", 1}};
  std::ostringstream out;
  EXPECT_EQ(check_gates(parse_gates("p99_ms<5"), m, false, out), 1);
  EXPECT_NE(out.str().find("GATE FAILED: no metric named 'p99_ms'"), std::string::npos) << out.str();
  std::ostringstream prefix;
  EXPECT_EQ(check_gates(parse_gates("nosuchkernel>=1"), m, true, prefix), 1);
  EXPECT_NE(prefix.str().find("no metric named 'nosuchkernel*'"), std::string::npos) << prefix.str();
  std::ostringstream none;
  EXPECT_EQ(check_gates({}, m, false, none), 0);  // no --gate: nothing to fail
  EXPECT_EQ(none.str(), "");
}

}  // namespace
}  // namespace aitw::bench
