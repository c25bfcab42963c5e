#include "launch/optuna_client.h"

#include <httplib.h>

#include <cstdlib>
#include <fstream>
#include <thread>

#include "core/error.h"
#include "core/log.h"

namespace opine::launch {

using json = nlohmann::json;

namespace {

// Path segments carry study names: percent-encode everything but unreserved characters.
std::string escape(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += char(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string trial_path(const std::string& study, int64_t trial, const char* what) {
  return "/v1/studies/" + escape(study) + "/trials/" + std::to_string(trial) + "/" + what;
}

}  // namespace

std::string read_optuna_token(const std::string& token_file) {
  if (!token_file.empty()) {
    std::ifstream in(token_file);
    OPINE_CHECK_KIND(in.good(), ErrorKind::kIo, "cannot read the Optuna token file ", token_file);
    std::string token;
    std::getline(in, token);
    while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
    OPINE_CHECK(!token.empty(), "the Optuna token file ", token_file, " is empty");
    return token;
  }
  const char* env = std::getenv("OPINE_OPTUNA_TOKEN");
  return env ? env : "";
}

OptunaClient::OptunaClient(const std::string& url, std::string token, int attempts)
    : url_(url), token_(std::move(token)), attempts_(std::max(1, attempts)) {
  OPINE_CHECK(url.rfind("http://", 0) == 0, "--optuna-url ", url, ": expected http://HOST:PORT");
  client_ = std::make_unique<httplib::Client>(url);
  client_->set_connection_timeout(5, 0);
  client_->set_read_timeout(300, 0);  // an ask may wait for a slow sampler on a big study
  client_->set_write_timeout(30, 0);
}

OptunaClient::~OptunaClient() = default;

json OptunaClient::request(const std::string& method, const std::string& path, const json& body) {
  httplib::Headers headers;
  if (!token_.empty()) headers.emplace("Authorization", "Bearer " + token_);
  double wait = 0.5;
  std::string last_error;
  for (int attempt = 1; attempt <= attempts_; ++attempt) {
    httplib::Result res = method == "GET" ? client_->Get(path, headers)
                                          : client_->Post(path, headers, body.dump(), "application/json");
    if (res) {
      json answer;
      try {
        answer = res->body.empty() ? json::object() : json::parse(res->body);
      } catch (const json::exception&) {
        OPINE_CHECK(false, "Optuna service ", url_, path, ": answered status ", res->status,
                    " with non-JSON: ", res->body.substr(0, 200));
      }
      OPINE_CHECK(res->status >= 200 && res->status < 300, "Optuna service ", url_, path, ": ", res->status,
                  " ", answer.value("error", res->body.substr(0, 200)));
      return answer;
    }
    // Not reached (refused, reset, timed out): the service may be restarting.
    last_error = httplib::to_string(res.error());
    if (attempt < attempts_) {
      log::warn("Optuna service ", url_, " not reachable (", last_error, "); retrying in ", wait, " s (",
                attempt, "/", attempts_, ")");
      std::this_thread::sleep_for(std::chrono::duration<double>(wait));
      wait = std::min(wait * 2, 30.0);
    }
  }
  OPINE_CHECK_KIND(false, ErrorKind::kIo, "Optuna service ", url_, " not reachable after ", attempts_,
                   " attempts (", last_error, "): is `python launch/optuna_service.py` running there?");
  return {};
}

json OptunaClient::health() { return request("GET", "/v1/health", {}); }

json OptunaClient::create_study(const std::string& name, const std::vector<std::string>& directions,
                                const json& sampler, const json& pruner) {
  return request("POST", "/v1/studies",
                 {{"study_name", name},
                  {"directions", directions},
                  {"sampler", sampler},
                  {"pruner", pruner},
                  {"load_if_exists", true}});
}

json OptunaClient::study(const std::string& name) {
  return request("GET", "/v1/studies/" + escape(name), {});
}

AskedTrial OptunaClient::ask(const std::string& study, const std::string& request_id,
                             const json& distributions, const json& fixed_params) {
  const json a =
      request("POST", "/v1/studies/" + escape(study) + "/ask",
              {{"request_id", request_id}, {"distributions", distributions}, {"fixed_params", fixed_params}});
  AskedTrial t;
  t.number = a.at("trial_number").get<int64_t>();
  t.params = a.value("params", json::object());
  t.state = a.value("state", "RUNNING");
  return t;
}

bool OptunaClient::report(const std::string& study, int64_t trial, double value, int64_t step) {
  return request("POST", trial_path(study, trial, "report"), {{"value", value}, {"step", step}})
      .value("should_prune", false);
}

json OptunaClient::tell(const std::string& study, int64_t trial, const std::string& state,
                        const std::vector<double>& values) {
  json body = {{"state", state}};
  if (state == "COMPLETE") body["values"] = values;
  return request("POST", trial_path(study, trial, "tell"), body);
}

void OptunaClient::heartbeat(const std::string& study, int64_t trial) {
  request("POST", trial_path(study, trial, "heartbeat"), json::object());
}

void OptunaClient::enqueue(const std::string& study, const json& params) {
  request("POST", "/v1/studies/" + escape(study) + "/enqueue",
          {{"params", params}, {"skip_if_exists", true}});
}

json OptunaClient::best(const std::string& study) {
  return request("GET", "/v1/studies/" + escape(study) + "/best", {});
}

}  // namespace opine::launch
