// The client side of opine's Optuna service (launch/optuna_service.py), over HTTP/JSON with
// cpp-httplib: one method per endpoint. A service that does not answer is retried with
// exponential back-off before the error says where it tried and how often; an answer with an
// error status becomes an opine::Error carrying the service's message.
#pragma once

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace httplib {
class Client;
}

namespace opine::launch {

struct AskedTrial {
  int64_t number = -1;
  nlohmann::json params;  // name -> value
  std::string state;      // RUNNING for a new trial; a retried ask may find it finished
};

class OptunaClient {
 public:
  // `url`: http://host:port. `token`: sent as "Authorization: Bearer" when not empty.
  // `attempts`: tries per request when the service cannot be reached (back-off 0.5 s, doubling to 30 s).
  OptunaClient(const std::string& url, std::string token, int attempts = 8);
  ~OptunaClient();

  nlohmann::json health();
  nlohmann::json create_study(const std::string& name, const std::vector<std::string>& directions,
                              const nlohmann::json& sampler, const nlohmann::json& pruner);
  nlohmann::json study(const std::string& name);
  // `distributions`: name -> Optuna's distribution JSON ({"name": ..., "attributes": ...});
  // `fixed_params`: those set to a value (each must have a distribution), the others sampled.
  AskedTrial ask(const std::string& study, const std::string& request_id, const nlohmann::json& distributions,
                 const nlohmann::json& fixed_params = nlohmann::json::object());
  bool report(const std::string& study, int64_t trial, double value, int64_t step);  // should prune
  nlohmann::json tell(const std::string& study, int64_t trial, const std::string& state,
                      const std::vector<double>& values = {});
  void heartbeat(const std::string& study, int64_t trial);
  void enqueue(const std::string& study, const nlohmann::json& params);
  nlohmann::json best(const std::string& study);

 private:
  nlohmann::json request(const std::string& method, const std::string& path, const nlohmann::json& body);

  std::string url_, token_;
  int attempts_;
  std::unique_ptr<httplib::Client> client_;
};

// The token for a service: the file's first line when `token_file` is set, else the
// OPINE_OPTUNA_TOKEN environment variable, else empty.
std::string read_optuna_token(const std::string& token_file);

}  // namespace opine::launch
