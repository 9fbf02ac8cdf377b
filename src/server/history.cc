#include "server/history.h"

#include <cmath>
#include <map>
#include <set>

#include <fmt/format.h>


namespace petal::server {
namespace {

using nlohmann::json;

template <class... Fs>
struct Overloaded : Fs... {
  using Fs::operator()...;
};
template <class... Fs>
Overloaded(Fs...) -> Overloaded<Fs...>;

json OptionalNumber(const std::optional<double>& v) {
  if (!v || !std::isfinite(*v)) return nullptr;
  return *v;
}

std::string Hex(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes) out += fmt::format("{:02x}", c);
  return out;
}

absl::StatusOr<std::string> Unhex(const std::string& hex) {
  if (hex.size() % 2 != 0) return absl::InvalidArgumentError("odd-length hex string");
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2) {
    int v = 0;
    for (size_t k = 0; k < 2; ++k) {
      const char c = hex[i + k];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= c - '0';
      else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
      else return absl::InvalidArgumentError("bad hex digit");
    }
    out.push_back(static_cast<char>(v));
  }
  return out;
}

// CSV field: numbers as is, text quoted when needed.
std::string CsvField(const common::Scalar& v) {
  return std::visit(Overloaded{
                        [](bool b) { return std::string(b ? "true" : "false"); },
                        [](const common::Bytes& b) { return Hex(b.value); },
                        [](double d) { return fmt::format("{}", d); },
                        [](int64_t i) { return fmt::format("{}", i); },
                        [](uint64_t u) { return fmt::format("{}", u); },
                        [](const std::string& s) {
                          if (s.find_first_of(",\"\n") == std::string::npos) return s;
                          std::string q = "\"";
                          for (char c : s) {
                            if (c == '"') q += '"';
                            q += c;
                          }
                          return q + "\"";
                        },
                    },
                    v);
}

std::string CsvNumber(const std::optional<double>& v) {
  return v ? fmt::format("{}", *v) : std::string();
}

}  // namespace

json ConfigMapToJson(const common::ConfigMap& map) {
  json out = json::object();
  for (const auto& [key, value] : map) {
    std::visit(Overloaded{
                   [&](bool b) { out[key] = b; },
                   [&](const common::Bytes& b) { out[key] = json{{"bytes_hex", Hex(b.value)}}; },
                   [&](double d) {
                     if (std::isfinite(d)) {
                       out[key] = d;
                     } else {
                       out[key] = json{{"float", std::isnan(d) ? "nan" : (d > 0 ? "inf" : "-inf")}};
                     }
                   },
                   [&](int64_t i) { out[key] = i; },
                   [&](uint64_t u) { out[key] = u; },
                   [&](const std::string& s) { out[key] = s; },
               },
               value);
  }
  return out;
}

absl::StatusOr<common::ConfigMap> ConfigMapFromJson(const json& j) {
  common::ConfigMap out;
  if (j.is_null()) return out;
  if (!j.is_object()) return absl::InvalidArgumentError("metrics must be a JSON object");
  for (const auto& [key, v] : j.items()) {
    if (v.is_boolean()) {
      out.Set(key, v.get<bool>());
    } else if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
      out.Set(key, v.get<uint64_t>());
    } else if (v.is_number_integer()) {
      out.Set(key, v.get<int64_t>());
    } else if (v.is_number_float()) {
      out.Set(key, v.get<double>());
    } else if (v.is_string()) {
      out.Set(key, v.get<std::string>());
    } else if (v.is_object() && v.contains("bytes_hex")) {
      auto bytes = Unhex(v["bytes_hex"].get<std::string>());
      if (!bytes.ok()) return bytes.status();
      out.Set(key, common::Bytes{*bytes});
    } else if (v.is_object() && v.contains("float")) {
      const std::string f = v["float"].get<std::string>();
      out.Set(key, f == "nan" ? NAN : (f == "inf" ? INFINITY : -INFINITY));
    } else {
      return absl::InvalidArgumentError(fmt::format("metric '{}' has an unsupported value", key));
    }
  }
  return out;
}

void History::TruncateAfter(int64_t round) {
  while (!rounds_.empty() && rounds_.back().round > round) rounds_.pop_back();
}

json History::ToJson() const {
  json rounds = json::array();
  json losses_distributed = json::array();
  json losses_centralized = json::array();
  json metrics_fit = json::object();
  json metrics_distributed = json::object();
  json metrics_centralized = json::object();
  auto add_metrics = [](json& into, int64_t round, const common::ConfigMap& m) {
    json values = ConfigMapToJson(m);
    for (const auto& [k, v] : values.items()) into[k].push_back(json::array({round, v}));
  };
  for (const RoundRecord& r : rounds_) {
    json failures = json::array();
    for (const FailureRecord& f : r.failures) {
      failures.push_back({{"phase", f.phase}, {"cid", f.cid}, {"error", f.error}});
    }
    rounds.push_back({
        {"round", r.round},
        {"fit",
         {{"sampled", r.fit_sampled},
          {"results", r.fit_results},
          {"failures", r.fit_failures},
          {"model_updated", r.model_updated},
          {"metrics", ConfigMapToJson(r.fit_metrics)},
          {"seconds", r.fit_seconds}}},
        {"evaluate",
         {{"sampled", r.evaluate_sampled},
          {"results", r.evaluate_results},
          {"failures", r.evaluate_failures},
          {"loss", OptionalNumber(r.loss_distributed)},
          {"metrics", ConfigMapToJson(r.evaluate_metrics)},
          {"seconds", r.evaluate_seconds}}},
        {"centralized",
         {{"loss", OptionalNumber(r.loss_centralized)},
          {"metrics", ConfigMapToJson(r.centralized_metrics)}}},
        {"failure_details", failures},
    });
    if (r.loss_distributed) losses_distributed.push_back(json::array({r.round, *r.loss_distributed}));
    if (r.loss_centralized) losses_centralized.push_back(json::array({r.round, *r.loss_centralized}));
    add_metrics(metrics_fit, r.round, r.fit_metrics);
    add_metrics(metrics_distributed, r.round, r.evaluate_metrics);
    add_metrics(metrics_centralized, r.round, r.centralized_metrics);
  }
  return json{{"rounds", rounds},
              {"losses_distributed", losses_distributed},
              {"losses_centralized", losses_centralized},
              {"metrics_distributed_fit", metrics_fit},
              {"metrics_distributed", metrics_distributed},
              {"metrics_centralized", metrics_centralized}};
}

absl::StatusOr<History> History::FromJson(const json& j) {
  History h;
  try {
    for (const json& r : j.at("rounds")) {
      RoundRecord rec;
      rec.round = r.at("round").get<int64_t>();
      const json& fit = r.at("fit");
      rec.fit_sampled = fit.at("sampled").get<int64_t>();
      rec.fit_results = fit.at("results").get<int64_t>();
      rec.fit_failures = fit.at("failures").get<int64_t>();
      rec.model_updated = fit.at("model_updated").get<bool>();
      auto fm = ConfigMapFromJson(fit.at("metrics"));
      if (!fm.ok()) return fm.status();
      rec.fit_metrics = *std::move(fm);
      rec.fit_seconds = fit.at("seconds").get<double>();
      const json& ev = r.at("evaluate");
      rec.evaluate_sampled = ev.at("sampled").get<int64_t>();
      rec.evaluate_results = ev.at("results").get<int64_t>();
      rec.evaluate_failures = ev.at("failures").get<int64_t>();
      if (!ev.at("loss").is_null()) rec.loss_distributed = ev.at("loss").get<double>();
      auto em = ConfigMapFromJson(ev.at("metrics"));
      if (!em.ok()) return em.status();
      rec.evaluate_metrics = *std::move(em);
      rec.evaluate_seconds = ev.at("seconds").get<double>();
      const json& c = r.at("centralized");
      if (!c.at("loss").is_null()) rec.loss_centralized = c.at("loss").get<double>();
      auto cm = ConfigMapFromJson(c.at("metrics"));
      if (!cm.ok()) return cm.status();
      rec.centralized_metrics = *std::move(cm);
      for (const json& f : r.value("failure_details", json::array())) {
        rec.failures.push_back({f.at("phase").get<std::string>(), f.at("cid").get<std::string>(),
                                f.at("error").get<std::string>()});
      }
      h.Add(std::move(rec));
    }
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(fmt::format("malformed history: {}", e.what()));
  }
  return h;
}

std::string History::ToCsv() const {
  std::set<std::string> fit_keys;
  std::set<std::string> eval_keys;
  std::set<std::string> central_keys;
  for (const RoundRecord& r : rounds_) {
    for (const auto& [k, v] : r.fit_metrics) fit_keys.insert(k);
    for (const auto& [k, v] : r.evaluate_metrics) eval_keys.insert(k);
    for (const auto& [k, v] : r.centralized_metrics) central_keys.insert(k);
  }
  std::string out =
      "round,fit_sampled,fit_results,fit_failures,model_updated,fit_seconds,evaluate_sampled,"
      "evaluate_results,evaluate_failures,loss_distributed,evaluate_seconds,loss_centralized";
  for (const std::string& k : fit_keys) out += ",fit_" + k;
  for (const std::string& k : eval_keys) out += ",evaluate_" + k;
  for (const std::string& k : central_keys) out += ",centralized_" + k;
  out += "\n";
  auto cells = [&](const common::ConfigMap& m, const std::set<std::string>& keys) {
    for (const std::string& k : keys) {
      const common::Scalar* v = m.Find(k);
      out += ",";
      if (v != nullptr) out += CsvField(*v);
    }
  };
  for (const RoundRecord& r : rounds_) {
    out += fmt::format("{},{},{},{},{},{:.6f},{},{},{},{},{:.6f},{}", r.round, r.fit_sampled,
                       r.fit_results, r.fit_failures, r.model_updated ? "true" : "false",
                       r.fit_seconds, r.evaluate_sampled, r.evaluate_results, r.evaluate_failures,
                       CsvNumber(r.loss_distributed), r.evaluate_seconds,
                       CsvNumber(r.loss_centralized));
    cells(r.fit_metrics, fit_keys);
    cells(r.evaluate_metrics, eval_keys);
    cells(r.centralized_metrics, central_keys);
    out += "\n";
  }
  return out;
}

}  // namespace petal::server
