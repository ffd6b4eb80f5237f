// Report by exception for Modbus points (exception_report.h): which values a
// poll's record carries, by deadband and max_silence.
#include <gtest/gtest.h>

#include "tidegate/drivers/modbus/exception_report.h"

namespace tidegate::drivers::modbus {
namespace {

using Json = nlohmann::ordered_json;
constexpr std::int64_t kSecond = 1'000'000'000;

Point banded(const std::string& name, double band, double percent, std::chrono::milliseconds silence) {
  Point p;
  p.name = name;
  p.by_exception = true;
  p.deadband = band;
  p.deadband_percent = percent;
  p.max_silence = silence;
  return p;
}

TEST(ModbusExceptionReport, BandsAreAbsoluteOrPercentOfTheValueLastSentAndTheWiderCounts) {
  const auto absolute = banded("a", 0.5, 0, std::chrono::minutes(1));
  EXPECT_FALSE(ExceptionReport::leaves_band(absolute, Json(20.0), Json(20.5)));
  EXPECT_TRUE(ExceptionReport::leaves_band(absolute, Json(20.0), Json(19.4)));
  const auto percent = banded("p", 0, 10, std::chrono::minutes(1));
  EXPECT_FALSE(ExceptionReport::leaves_band(percent, Json(-1000), Json(-1090)));
  EXPECT_TRUE(ExceptionReport::leaves_band(percent, Json(-1000), Json(-1101)));
  const auto both = banded("b", 5, 1, std::chrono::minutes(1));  // 1 % of 100 = 1 < 5
  EXPECT_FALSE(ExceptionReport::leaves_band(both, Json(100), Json(104)));
  const auto any = banded("z", 0, 0, std::chrono::minutes(1));
  EXPECT_TRUE(ExceptionReport::leaves_band(any, Json(7), Json(8)));
  EXPECT_FALSE(ExceptionReport::leaves_band(any, Json(7), Json(7.0)));
  // Not numbers: any change, including to and from null (NaN).
  EXPECT_TRUE(ExceptionReport::leaves_band(absolute, Json(true), Json(false)));
  EXPECT_TRUE(ExceptionReport::leaves_band(absolute, Json("EM24"), Json("EM25")));
  EXPECT_TRUE(ExceptionReport::leaves_band(absolute, Json(20.0), Json(nullptr)));
  EXPECT_FALSE(ExceptionReport::leaves_band(absolute, Json(nullptr), Json(nullptr)));
}

TEST(ModbusExceptionReport, ARecordCarriesTheChangedPointsAndEveryPointAtMaxSilence) {
  Point always;
  always.name = "always";
  const std::vector<Point> points = {banded("t", 1, 0, std::chrono::seconds(10)),
                                     banded("s", 0, 0, std::chrono::seconds(30)), always};
  ExceptionReport report(points);
  const std::vector<bool> all_read(3, true);
  bool full = false;
  // First poll: everything (nothing was sent before).
  EXPECT_EQ(report.select(all_read, {Json(20), Json(1), Json(5)}, 0, full), std::vector<bool>({true, true, true}));
  // Inside the bands: only the point without one.
  EXPECT_EQ(report.select(all_read, {Json(20.9), Json(1), Json(6)}, 1 * kSecond, full),
            std::vector<bool>({false, false, true}));
  EXPECT_FALSE(full);
  // t leaves its band around 20 (the value sent, not the 20.9 read).
  EXPECT_EQ(report.select(all_read, {Json(21.1), Json(1), Json(6)}, 2 * kSecond, full),
            std::vector<bool>({true, false, true}));
  // 10 s after t was last sent (at 2 s): a full confirmation.
  EXPECT_EQ(report.select(all_read, {Json(21.1), Json(1), Json(6)}, 11 * kSecond, full),
            std::vector<bool>({false, false, true}));
  EXPECT_EQ(report.select(all_read, {Json(21.1), Json(1), Json(6)}, 12 * kSecond, full),
            std::vector<bool>({true, true, true}));
  EXPECT_TRUE(full);
  // A point not read in this poll is never carried.
  EXPECT_EQ(report.select({false, true, true}, {Json(), Json(2), Json(6)}, 13 * kSecond, full),
            std::vector<bool>({false, true, true}));
  // A refused record: its points count as never sent.
  report.forget({1});
  EXPECT_EQ(report.select(all_read, {Json(21.1), Json(2), Json(6)}, 14 * kSecond, full),
            std::vector<bool>({false, true, true}));
}

}  // namespace
}  // namespace tidegate::drivers::modbus
