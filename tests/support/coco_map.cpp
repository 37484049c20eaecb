#include "coco_map.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <stdexcept>
#include <string_view>
#include <system_error>

namespace aitw::eval {
namespace {

constexpr int kNumIouThresholds = 10;
constexpr int kNumRecallThresholds = 101;

// pycocotools builds these with np.linspace(.5, .95, 10), i.e. 0.5 + i * ((0.95 - 0.5) / 9): the 9th value
// is 0.8999999999999999, not 0.9. Spelled out as literals (each the exact double that linspace yields) so
// that FMA contraction on targets like aarch64 cannot shift a threshold by an ulp and flip a boundary match.
constexpr std::array<double, kNumIouThresholds> kIouThresholds = {
    0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.8999999999999999, 0.95};
constexpr int kIou50 = 0;
constexpr int kIou75 = 5;

// np.linspace(0, 1, 101) is i * 0.01 with the last element forced to 1.0. That is not always i / 100.0
// (35 * 0.01 == 0.35000000000000003), which matters when a recall lands exactly on a threshold.
std::array<double, kNumRecallThresholds> make_recall_thresholds() {
  std::array<double, kNumRecallThresholds> r{};
  for (int i = 0; i < kNumRecallThresholds; ++i) r[i] = static_cast<double>(i) * 0.01;
  r[kNumRecallThresholds - 1] = 1.0;
  return r;
}
const std::array<double, kNumRecallThresholds> kRecallThresholds = make_recall_thresholds();

bool finite_box(const BoxXYXY& b) {
  return std::isfinite(b.x1) && std::isfinite(b.y1) && std::isfinite(b.x2) && std::isfinite(b.y2);
}

// Double precision, like pycocotools' bbIou; an empty or inverted overlap counts as no overlap.
double iou(const BoxXYXY& a, const BoxXYXY& b) {
  const double iw = std::min<double>(a.x2, b.x2) - std::max<double>(a.x1, b.x1);
  if (iw <= 0) return 0.0;
  const double ih = std::min<double>(a.y2, b.y2) - std::max<double>(a.y1, b.y1);
  if (ih <= 0) return 0.0;
  const double inter = iw * ih;
  const double area_a = (static_cast<double>(a.x2) - a.x1) * (static_cast<double>(a.y2) - a.y1);
  const double area_b = (static_cast<double>(b.x2) - b.x1) * (static_cast<double>(b.y2) - b.y1);
  const double uni = area_a + area_b - inter;
  return uni > 0 ? inter / uni : 0.0;
}

// One class's AP at one IoU threshold, from records already sorted by descending score. A template only
// because the record type is private to MapEvaluator.
template <typename Record>
double average_precision(const std::vector<Record>& sorted, int threshold, int num_gt,
                         std::vector<double>& recall, std::vector<double>& precision) {
  const std::size_t nd = sorted.size();
  recall.resize(nd);
  precision.resize(nd);
  double tp = 0, fp = 0;
  for (std::size_t i = 0; i < nd; ++i) {
    if ((sorted[i].tp_mask >> threshold) & 1u)
      tp += 1;
    else
      fp += 1;
    recall[i] = tp / num_gt;
    // pycocotools adds np.spacing(1) to the denominator only to dodge 0/0, which cannot happen here.
    precision[i] = tp / (tp + fp);
  }
  for (std::size_t i = nd; i-- > 1;) precision[i - 1] = std::max(precision[i - 1], precision[i]);

  double sum = 0;
  for (const double r : kRecallThresholds) {
    // np.searchsorted(side='left'); recall thresholds past the final recall contribute 0.
    const auto it = std::lower_bound(recall.begin(), recall.end(), r);
    if (it == recall.end()) break;
    sum += precision[static_cast<std::size_t>(it - recall.begin())];
  }
  return sum / kNumRecallThresholds;
}

[[noreturn]] void throw_label_error(const std::string& path, int line_no, const std::string& what,
                                    std::string_view line) {
  constexpr std::size_t kMaxQuoted = 80;
  std::string quoted(line.substr(0, kMaxQuoted));
  if (line.size() > kMaxQuoted) quoted += "...";
  throw std::runtime_error(path + ":" + std::to_string(line_no) + ": " + what + " in YOLO label line '" +
                           quoted + "'");
}

std::vector<std::string_view> split_whitespace(std::string_view s) {
  constexpr std::string_view kSpace = " \t\r\v\f";
  std::vector<std::string_view> tokens;
  std::size_t pos = s.find_first_not_of(kSpace);
  while (pos != std::string_view::npos) {
    const std::size_t end = s.find_first_of(kSpace, pos);
    tokens.push_back(s.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos));
    pos = s.find_first_not_of(kSpace, end);
  }
  return tokens;
}

template <typename T>
bool parse_full(std::string_view token, T& out) {
  const char* end = token.data() + token.size();
  const auto [ptr, ec] = std::from_chars(token.data(), end, out);
  return ec == std::errc() && ptr == end;
}

}  // namespace

void MapEvaluator::add_image(const std::vector<GroundTruth>& gts, const std::vector<Prediction>& preds) {
  for (const GroundTruth& g : gts) {
    if (g.class_id < 0) throw std::invalid_argument("MapEvaluator: negative ground-truth class id");
    if (!finite_box(g.box)) throw std::invalid_argument("MapEvaluator: non-finite ground-truth box");
  }
  for (const Prediction& p : preds) {
    if (p.class_id < 0) throw std::invalid_argument("MapEvaluator: negative prediction class id");
    if (!finite_box(p.box)) throw std::invalid_argument("MapEvaluator: non-finite prediction box");
    if (!std::isfinite(p.score)) throw std::invalid_argument("MapEvaluator: non-finite prediction score");
  }

  // Group by class; within a class keep ground truth in input order and predictions in stable
  // descending-score order, which is the order pycocotools' evaluateImg matches in.
  std::vector<std::size_t> gt_order(gts.size());
  std::iota(gt_order.begin(), gt_order.end(), std::size_t{0});
  std::stable_sort(gt_order.begin(), gt_order.end(),
                   [&](std::size_t a, std::size_t b) { return gts[a].class_id < gts[b].class_id; });
  std::vector<std::size_t> pred_order(preds.size());
  std::iota(pred_order.begin(), pred_order.end(), std::size_t{0});
  std::stable_sort(pred_order.begin(), pred_order.end(), [&](std::size_t a, std::size_t b) {
    if (preds[a].class_id != preds[b].class_id) return preds[a].class_id < preds[b].class_id;
    return preds[a].score > preds[b].score;
  });

  int max_class = -1;
  if (!gt_order.empty()) max_class = gts[gt_order.back()].class_id;
  if (!pred_order.empty()) max_class = std::max(max_class, preds[pred_order.back()].class_id);
  const std::size_t needed = static_cast<std::size_t>(max_class + 1);
  if (records_per_class_.size() < needed) records_per_class_.resize(needed);
  if (gt_per_class_.size() < needed) gt_per_class_.resize(needed, 0);

  std::vector<double> ious;
  std::vector<char> gt_taken;
  std::size_t gi = 0, pi = 0;
  while (gi < gt_order.size() || pi < pred_order.size()) {
    int cls = max_class;
    if (gi < gt_order.size()) cls = std::min(cls, gts[gt_order[gi]].class_id);
    if (pi < pred_order.size()) cls = std::min(cls, preds[pred_order[pi]].class_id);
    const std::size_t g_begin = gi, p_begin = pi;
    while (gi < gt_order.size() && gts[gt_order[gi]].class_id == cls) ++gi;
    while (pi < pred_order.size() && preds[pred_order[pi]].class_id == cls) ++pi;
    const std::size_t num_g = gi - g_begin, num_p = pi - p_begin;

    ious.resize(num_p * num_g);
    for (std::size_t d = 0; d < num_p; ++d)
      for (std::size_t g = 0; g < num_g; ++g)
        ious[d * num_g + g] = iou(preds[pred_order[p_begin + d]].box, gts[gt_order[g_begin + g]].box);

    std::vector<MatchRecord>& records = records_per_class_[static_cast<std::size_t>(cls)];
    const std::size_t first_record = records.size();
    for (std::size_t d = 0; d < num_p; ++d)
      records.push_back({preds[pred_order[p_begin + d]].score, std::uint16_t{0}});

    for (int t = 0; t < kNumIouThresholds; ++t) {
      gt_taken.assign(num_g, 0);
      for (std::size_t d = 0; d < num_p; ++d) {
        double best = kIouThresholds[t];
        std::size_t match = num_g;
        for (std::size_t g = 0; g < num_g; ++g) {
          if (gt_taken[g]) continue;
          const double v = ious[d * num_g + g];
          if (v < best) continue;
          // ">=" rather than ">" on purpose: pycocotools lets a later ground truth with an equal IoU
          // replace the current best, so ties go to the last one.
          best = v;
          match = g;
        }
        if (match == num_g) continue;
        gt_taken[match] = 1;
        records[first_record + d].tp_mask |= static_cast<std::uint16_t>(1u << t);
      }
    }
    gt_per_class_[static_cast<std::size_t>(cls)] += static_cast<int>(num_g);
  }

  num_gt_ += static_cast<int>(gts.size());
  num_predictions_ += static_cast<int>(preds.size());
  ++num_images_;
}

MapSummary MapEvaluator::summarize() const {
  MapSummary s;
  s.num_gt = num_gt_;
  s.num_predictions = num_predictions_;
  s.num_images = num_images_;
  const std::size_t num_classes = std::max(records_per_class_.size(), gt_per_class_.size());
  s.ap50_95_per_class.assign(num_classes, -1.0);

  std::vector<MatchRecord> sorted;
  std::vector<double> recall, precision;
  double sum50 = 0, sum75 = 0, sum50_95 = 0;
  for (std::size_t c = 0; c < num_classes; ++c) {
    const int num_gt = c < gt_per_class_.size() ? gt_per_class_[c] : 0;
    if (num_gt == 0) continue;
    sorted = c < records_per_class_.size() ? records_per_class_[c] : std::vector<MatchRecord>{};
    // Stable, so equal scores keep image order (pycocotools concatenates per-image results and mergesorts).
    std::stable_sort(sorted.begin(), sorted.end(),
                     [](const MatchRecord& a, const MatchRecord& b) { return a.score > b.score; });
    std::array<double, kNumIouThresholds> ap{};
    for (int t = 0; t < kNumIouThresholds; ++t)
      ap[t] = average_precision(sorted, t, num_gt, recall, precision);
    const double ap50_95 = std::accumulate(ap.begin(), ap.end(), 0.0) / kNumIouThresholds;
    s.ap50_95_per_class[c] = ap50_95;
    sum50 += ap[kIou50];
    sum75 += ap[kIou75];
    sum50_95 += ap50_95;
    ++s.classes_with_gt;
  }
  if (s.classes_with_gt > 0) {
    s.map50 = sum50 / s.classes_with_gt;
    s.map75 = sum75 / s.classes_with_gt;
    s.map50_95 = sum50_95 / s.classes_with_gt;
  }
  return s;
}

std::vector<GroundTruth> read_yolo_labels(const std::string& path, int img_w, int img_h) {
  if (img_w <= 0 || img_h <= 0)
    throw std::invalid_argument("read_yolo_labels: image size must be positive (" + std::to_string(img_w) +
                                "x" + std::to_string(img_h) + ") for " + path);
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (status.type() == std::filesystem::file_type::not_found) return {};
  // Anything else that is not a readable regular file is a broken dataset, not "no objects".
  if (ec) throw std::runtime_error(path + ": cannot stat label file: " + ec.message());
  if (status.type() != std::filesystem::file_type::regular)
    throw std::runtime_error(path + ": label path is not a regular file");
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open label file");

  std::vector<GroundTruth> out;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    const std::vector<std::string_view> tok = split_whitespace(line);
    if (tok.empty()) continue;
    if (tok.size() != 5)
      throw_label_error(path, line_no, "expected 5 fields, got " + std::to_string(tok.size()), line);
    int cls = 0;
    if (!parse_full(tok[0], cls) || cls < 0)
      throw_label_error(path, line_no, "class id is not a non-negative integer", line);
    std::array<double, 4> v{};  // cx, cy, w, h
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (!parse_full(tok[i + 1], v[i]) || !std::isfinite(v[i]))
        throw_label_error(path, line_no, "field " + std::to_string(i + 2) + " is not a number", line);
      // Ultralytics rejects such files as corrupt too; silently clamping would skew the evaluation.
      if (v[i] < 0.0 || v[i] > 1.0)
        throw_label_error(path, line_no, "field " + std::to_string(i + 2) + " is outside [0,1]", line);
    }
    const double cx = v[0], cy = v[1], w = v[2], h = v[3];
    out.push_back({{static_cast<float>(img_w * (cx - w / 2)), static_cast<float>(img_h * (cy - h / 2)),
                    static_cast<float>(img_w * (cx + w / 2)), static_cast<float>(img_h * (cy + h / 2))},
                   cls});
  }
  if (in.bad()) throw std::runtime_error(path + ": read error after line " + std::to_string(line_no));
  return out;
}

}  // namespace aitw::eval
