#include "launch/train.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <fstream>
#include <iostream>

#include "core/adamw.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "core/memory.h"
#include "core/metrics.h"
#include "core/random.h"
#include "core/run_dir.h"
#include "core/schedule.h"
#include "core/tensorboard.h"
#include "data/pipeline.h"
#include "data/sampler.h"
#include "launch/eval_report.h"
#include "launch/predictor.h"
#include "launch/resolve.h"
#include "models/heads.h"
#include "models/loader.h"

namespace opine::launch {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

double all_sum(dist::Communicator& cpu, double value) {
  at::Tensor t = at::full({1}, value, at::kDouble);
  cpu.all_reduce(t, dist::ReduceOp::kSum);
  return t.item<double>();
}

std::vector<std::string> gather_hosts(dist::Communicator& cpu, const std::string& host) {
  constexpr int64_t kWidth = 256;
  at::Tensor mine = at::zeros({kWidth}, at::kByte);
  for (size_t i = 0; i < host.size() && i + 1 < size_t(kWidth); ++i) mine[i] = static_cast<uint8_t>(host[i]);
  at::Tensor all = at::empty({kWidth * cpu.size()}, at::kByte);
  cpu.all_gather(mine, all);
  std::vector<std::string> hosts;
  for (int r = 0; r < cpu.size(); ++r)
    hosts.emplace_back(reinterpret_cast<const char*>(all.data_ptr<uint8_t>() + r * kWidth));
  return hosts;
}

json memory_json(at::Device device) {
  const MemoryStats m = memory_stats(device);
  json j = {{"host_rss", m.host_rss}, {"host_peak_rss", m.host_peak_rss}};
  if (device.is_cuda()) j.update({{"device_allocated", m.device_allocated}, {"device_peak", m.device_peak}});
  return j;
}

void save_rng(const fs::path& file) {
  at::Generator gen = at::detail::getDefaultCPUGenerator();
  at::Tensor state;
  {
    std::lock_guard<std::mutex> lock(gen.mutex());
    state = gen.get_state();
  }
  write_text_atomic(file,
                    std::string(reinterpret_cast<const char*>(state.data_ptr<uint8_t>()), state.numel()));
}

void load_rng(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  OPINE_CHECK_KIND(in, ErrorKind::kIo, "cannot read ", file.string());
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  at::Tensor state = at::empty({static_cast<int64_t>(bytes.size())}, at::kByte);
  std::memcpy(state.data_ptr<uint8_t>(), bytes.data(), bytes.size());
  at::Generator gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
}

// Set by SIGUSR1 / SIGTERM (a SLURM job near its time limit, a preemption): the run checkpoints
// at the end of the current step and stops; --resume continues it.
std::atomic<bool> g_stop_requested{false};
extern "C" void request_stop(int) { g_stop_requested.store(true); }

std::string rank_file(const std::string& stem, int rank, const std::string& ext) {
  return stem + "-rank-" + std::to_string(rank) + ext;
}

}  // namespace

at::Tensor class_weights_for(const std::string& mode, const data::CachedSplit& train, size_t classes) {
  if (mode == "none" || classes == 0) return {};
  std::vector<double> count(classes, 0.0);
  for (size_t i = 0; i < train.size(); ++i)
    if (train.labels[i] >= 0 && train.labels[i] < static_cast<int>(classes)) count[train.labels[i]] += 1;
  at::Tensor w = at::empty({static_cast<int64_t>(classes)}, at::kFloat);
  for (size_t c = 0; c < classes; ++c)
    w[c] = count[c] > 0 ? double(train.size()) / (double(classes) * count[c]) : 0.0;
  return w;
}

data::CollateOptions collate_options(const OpineOptions& o, const models::Tokenizer& tokenizer) {
  data::CollateOptions c;
  c.pad_id = tokenizer.pad_id().value_or(tokenizer.eos_id().value_or(0));
  c.padding_side = "right";
  c.truncation_side = "left";
  c.max_length = o.data.max_length;
  return c;
}

std::string resolve_metric(const std::string& metric, data::LabelKind kind) {
  if (metric != "auto") return metric;
  switch (kind) {
    case data::LabelKind::kClass:
      return "f1_macro";
    case data::LabelKind::kRegression:
      return "mse";
    case data::LabelKind::kCausalLm:
      return "loss";
  }
  return "loss";
}

json evaluate(Trainable& model, const data::CachedSplit& split, const std::vector<std::string>& classes,
              const data::CollateOptions& collate, int64_t batch_size, const at::Tensor& class_weights,
              dist::Communicator& comm, std::vector<ExamplePrediction>* per_example) {
  model.set_training(false);
  data::SamplerOptions so;
  so.shuffle = false;
  so.batch_size = batch_size;
  // Padded to a multiple of the world size so every rank runs as many batches (collectives stay
  // in step); the repeated examples are dropped again below.
  data::DistributedSampler sampler(static_cast<int64_t>(split.size()), so, comm.rank(), comm.size());
  sampler.set_epoch(0);
  std::vector<int64_t> indices;
  std::vector<double> values;  // class or score per example
  std::vector<float> probabilities;
  double loss_sum = 0, loss_count = 0;
  const int64_t num_classes = static_cast<int64_t>(classes.size());
  for (std::vector<int64_t> idx = sampler.next_batch(); !idx.empty(); idx = sampler.next_batch()) {
    std::vector<data::TokenizedExample> examples;
    for (int64_t i : idx) examples.push_back(split.example(static_cast<size_t>(i)));
    const data::Batch batch = data::collate(examples, model.label_kind(), collate);
    const auto [pred, loss] = model.predict(batch, class_weights);
    loss_sum += loss.sum.item<double>();
    loss_count += loss.count;
    indices.insert(indices.end(), idx.begin(), idx.end());
    // One copy per batch into the host vectors (no per-element tensor access).
    if (model.label_kind() == data::LabelKind::kClass) {
      const at::Tensor classes = pred.classes.to(at::kDouble).contiguous();
      const at::Tensor probs = pred.probabilities.contiguous();
      values.insert(values.end(), classes.data_ptr<double>(), classes.data_ptr<double>() + classes.numel());
      probabilities.insert(probabilities.end(), probs.data_ptr<float>(),
                           probs.data_ptr<float>() + probs.numel());
    } else if (model.label_kind() == data::LabelKind::kRegression) {
      const at::Tensor scores = pred.scores.to(at::kDouble).contiguous();
      values.insert(values.end(), scores.data_ptr<double>(), scores.data_ptr<double>() + scores.numel());
    }
  }
  // Every rank's predictions to every rank (the same count on each: the sampler pads).
  const at::Device device = model.device();
  auto gather = [&](const at::Tensor& local) {
    at::Tensor in = local.to(device).contiguous();
    at::Tensor out = at::empty({in.numel() * comm.size()}, in.options());
    comm.all_gather(in, out);
    return out.cpu();
  };
  at::Tensor sums = at::tensor({loss_sum, loss_count}, at::kDouble).to(device);
  comm.all_reduce(sums, dist::ReduceOp::kSum);
  sums = sums.cpu();
  json report;
  if (model.label_kind() != data::LabelKind::kCausalLm) {
    const at::Tensor all_idx = gather(at::tensor(indices, at::kLong));
    const at::Tensor all_val = gather(at::tensor(values, at::kDouble));
    const at::Tensor all_prob = num_classes > 0 && model.label_kind() == data::LabelKind::kClass
                                    ? gather(at::tensor(probabilities, at::kFloat))
                                    : at::Tensor();
    std::vector<char> seen(split.size(), 0);
    std::vector<int> truth, predicted;
    std::vector<double> truth_v, predicted_v;
    std::vector<std::vector<double>> probs;
    const int64_t* idx = all_idx.data_ptr<int64_t>();
    const double* val = all_val.data_ptr<double>();
    if (per_example) per_example->assign(split.size(), ExamplePrediction());
    for (int64_t k = 0; k < all_idx.numel(); ++k) {
      const int64_t i = idx[k];
      if (seen[i]) continue;
      seen[i] = 1;
      if (model.label_kind() == data::LabelKind::kClass) {
        truth.push_back(split.labels[i]);
        predicted.push_back(static_cast<int>(val[k]));
        const float* p = all_prob.data_ptr<float>() + k * num_classes;
        probs.emplace_back(p, p + num_classes);
        if (per_example) {
          (*per_example)[i].label = static_cast<int>(val[k]);
          (*per_example)[i].probabilities = probs.back();
        }
      } else {
        truth_v.push_back(split.targets[i]);
        predicted_v.push_back(val[k]);
        if (per_example) (*per_example)[i].score = val[k];
      }
    }
    report = model.label_kind() == data::LabelKind::kClass
                 ? metrics::classify(truth, predicted, classes, probs).to_json()
                 : metrics::regress(truth_v, predicted_v).to_json();
  }
  report["loss"] = sums[1].item<double>() > 0 ? sums[0].item<double>() / sums[1].item<double>() : NAN;
  report["examples"] = static_cast<int64_t>(split.size());
  return report;
}

StepStats train_step(Trainable& model, AdamW& optimizer, const std::vector<data::Batch>& micro,
                     const at::Tensor& class_weights, const TrainOptions& t, double lr_multiplier,
                     dist::Communicator& cpu) {
  const data::LabelKind kind = model.label_kind();
  // Every rank divides by the count of the whole step, so summing gradients over ranks and
  // micro-batches gives the mean one process would compute over the global batch.
  double local_count = 0, local_tokens = 0;
  for (const data::Batch& b : micro) {
    local_count += loss_count(b, kind, class_weights);
    local_tokens += double(b.num_tokens());
  }
  const double global_count = all_sum(cpu, local_count);
  model.set_training(true);
  double local_loss = 0;
  for (const data::Batch& b : micro) {
    const LossSum ls = model.loss_sum(b, class_weights);
    (ls.sum / std::max(global_count, 1.0)).backward();
    local_loss += ls.sum.item<double>();
  }
  dist::ShardedModel& sharded = model.sharded();
  sharded.reduce_gradients();
  StepStats stats;
  stats.grad_norm = sharded.grad_norm();
  if (t.max_grad_norm > 0) {
    // torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6) when that is below 1.
    const double coef = t.max_grad_norm / (stats.grad_norm + 1e-6);
    if (coef < 1.0) sharded.scale_gradients(coef);
  }
  optimizer.step(lr_multiplier);
  sharded.after_step();
  optimizer.zero_grad();
  sharded.zero_grad();
  stats.loss = all_sum(cpu, local_loss) / std::max(global_count, 1.0);
  stats.tokens = all_sum(cpu, local_tokens);
  return stats;
}

TrainResult train(const OpineOptions& o, const std::string& resolved_yaml, bool resume,
                  dist::Runtime& runtime, const EvalHook& on_eval) {
  const TrainOptions& t = o.train;
  const int rank = runtime.rank(), world = runtime.world_size();
  const bool lead = rank == 0;
  const at::Device device = runtime.bind_device(o.model.device);
  dist::Communicator& comm = runtime.for_device(device);
  dist::Communicator& cpu = runtime.world();
  if (lead) log::info(runtime.describe(), "; resolved configuration:\n", resolved_yaml);

  // Seeds: one seed decides everything; dropout masks differ per rank, as every rank's data does.
  const uint64_t seed = static_cast<uint64_t>(o.seed);
  {
    at::Generator gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_current_seed(derive_seed(seed, 0x64726f70 /*"drop"*/, rank));
  }

  // ---- data
  const std::unique_ptr<models::Tokenizer> tokenizer = resolve_tokenizer(o);
  const data::Encoder encoder = make_encoder(o, *tokenizer);
  data::CacheCoordination coordination{rank, [&cpu] { cpu.barrier(); }};
  const data::PreparedData prepared = data::prepare_data(o.data, encoder, coordination);
  const data::TokenCache& cache = prepared.cache;
  OPINE_CHECK(cache.splits.count("train"), "the dataset has no train split");
  const data::CachedSplit& train_split = cache.splits.at("train");
  const data::CachedSplit* eval_split =
      cache.splits.count(t.eval_split) ? &cache.splits.at(t.eval_split) : nullptr;
  if (!eval_split && lead) log::warn("no '", t.eval_split, "' split: the run is not evaluated");

  // ---- model
  models::ModelFile file = models::open_model_file(o.model.path);
  Trainable model(o, runtime, device, file, cache.classes, *tokenizer);
  const data::LabelKind kind = model.label_kind();
  const at::Tensor class_weights = kind == data::LabelKind::kClass
                                       ? class_weights_for(t.class_weights, train_split, cache.classes.size())
                                       : at::Tensor();
  const data::CollateOptions collate = collate_options(o, *tokenizer);
  if (lead) log::info(model.describe_trainable());
  log::info("rank ", rank, " memory at start-up: ", memory_json(device).dump());

  // ---- run folder (once everything it records has loaded: a mistake above leaves no folder)
  const RunPaths paths = run_paths(t.run_dir);
  if (lead) {
    make_run_dir(paths.root, resume);
    if (!resume || !fs::exists(paths.config_yaml)) write_text_atomic(paths.config_yaml, resolved_yaml);
  }
  cpu.barrier();

  // ---- optimizer, schedule, sampler
  AdamW optimizer(model.optimizer_groups(), t.optimizer);
  std::vector<int64_t> lengths;
  for (size_t i = 0; i < train_split.size(); ++i) lengths.push_back(train_split.length(i));
  data::DistributedSampler sampler(static_cast<int64_t>(train_split.size()), t.sampler, rank, world,
                                   t.sampler.group_by_length ? lengths : std::vector<int64_t>{});
  const int64_t steps_per_epoch = (sampler.num_batches() + t.grad_accumulation - 1) / t.grad_accumulation;
  const int64_t total_steps = t.max_steps > 0 ? t.max_steps : t.epochs * steps_per_epoch;
  const std::string metric = resolve_metric(t.metric, kind);
  const bool greater = metric != "loss" && metrics::greater_is_better(metric);
  CheckpointStore store(paths.checkpoints_dir, t.checkpoint.keep_last, metric, greater);

  // ---- state, or where a stopped run stood
  int64_t step = 0, epoch = 0;
  double best = NAN;
  int evals_without_gain = 0;
  json last_eval;
  sampler.set_epoch(0);
  if (resume) {
    at::Tensor at_step = at::full({1}, int64_t{-1}, at::kLong);
    if (lead) {
      if (const std::optional<fs::path> latest = store.latest()) {
        std::ifstream in(*latest / "trainer_state.json");
        at_step[0] = json::parse(in).at("step").get<int64_t>();
      }
    }
    cpu.broadcast(at_step, 0);
    if (at_step.item<int64_t>() < 0) {
      if (lead) log::warn(paths.root.string(), " has no complete checkpoint: starting from the beginning");
    } else {
      step = at_step.item<int64_t>();
      const fs::path dir = paths.checkpoints_dir / CheckpointStore::name(step);
      std::ifstream in(dir / "trainer_state.json");
      const json state = json::parse(in);
      epoch = state.at("epoch").get<int64_t>();
      best = state.at("best").is_null() ? NAN : state.at("best").get<double>();
      evals_without_gain = state.at("evals_without_gain").get<int>();
      last_eval = state.value("last_eval", json());
      sampler.restore(state.at("sampler").get<data::SamplerState>());
      model.load_adapter_values(dir / "adapter");
      optimizer.load(dir / rank_file("optimizer", rank, ".safetensors"));
      load_rng(dir / rank_file("rng", rank, ".bin"));
      if (lead) log::info("resumed ", paths.root.string(), " at step ", step, " (epoch ", epoch, ")");
    }
  }

  // ---- records
  std::unique_ptr<MetricsLog> metrics_log;
  std::unique_ptr<EventWriter> events;
  const std::vector<std::string> hosts = gather_hosts(cpu, runtime.info().host);
  if (lead) {
    metrics_log = std::make_unique<MetricsLog>(paths.metrics_jsonl, resume);
    if (resume) metrics_log->truncate_after(step);
    events = std::make_unique<EventWriter>(paths.events_dir);
    if (resume) events->add_session_start(step);
    json manifest = base_manifest();
    if (resume && fs::exists(paths.manifest_json)) {
      std::ifstream in(paths.manifest_json);
      json old = json::parse(in);
      json resumes = old.value("resumes", json::array());
      resumes.push_back({{"step", step}, {"time", manifest.value("time", "")}, {"hosts", hosts}});
      old["resumes"] = resumes;
      manifest = old;
    } else {
      manifest.update({{"world_size", world},
                       {"hosts", hosts},
                       {"seed", o.seed},
                       {"sampler_seed", t.sampler.seed},
                       {"data_cache", prepared.path.string()},
                       {"data_cache_hash", cache.content_hash},
                       {"model", o.model.path},
                       {"shard_mode", dist::shard_mode_name(model.sharded().mode())},
                       {"device", device.str()},
                       {"total_steps", total_steps}});
    }
    write_json_atomic(paths.manifest_json, manifest);
  }
  auto record = [&](json r) {
    if (!lead) return;
    for (auto& [key, value] : r.items())
      if (value.is_number() && key != "step")
        events->add_scalar(key, value.get<double>(), r.at("step").get<int64_t>());
    events->flush();
    metrics_log->write(r);
  };

  auto run_eval = [&]() -> json {
    json report =
        evaluate(model, *eval_split, cache.classes, collate, t.eval_batch_size, class_weights, comm);
    json r = {{"step", step}, {"epoch", epoch}};
    for (auto& [key, value] : report.items())
      if (value.is_number()) r["eval/" + key] = value;
    record(r);
    if (lead)
      log::info("step ", step, " ", t.eval_split, ": ", metric, " = ", report.value(metric, json()).dump(),
                ", loss = ", report.at("loss").get<double>());
    return report;
  };

  auto checkpoint = [&](std::optional<double> value) {
    const fs::path dir = CheckpointStore::tmp_path(paths.checkpoints_dir, step);
    if (lead) store.begin(step);
    cpu.barrier();
    model.save_adapter(dir / "adapter", lead);
    if (lead) describe_adapter(dir / "adapter", resolved_yaml, cache.classes, model.label_kind());
    optimizer.save(dir / rank_file("optimizer", rank, ".safetensors"));
    save_rng(dir / rank_file("rng", rank, ".bin"));
    if (lead) {
      json state = {{"step", step},
                    {"epoch", epoch},
                    {"sampler", sampler.state()},
                    {"best", std::isnan(best) ? json() : json(best)},
                    {"evals_without_gain", evals_without_gain},
                    {"last_eval", last_eval},
                    {"world_size", world}};
      write_json_atomic(dir / "trainer_state.json", state);
    }
    cpu.barrier();
    if (lead) store.commit(step, value);
    cpu.barrier();
  };

  // ---- the loop
  reset_peak(device);
  g_stop_requested.store(false);
  std::signal(SIGUSR1, request_stop);
  std::signal(SIGTERM, request_stop);
  bool stop = false, stopped_by_hook = false;
  const bool by_steps = t.max_steps > 0;
  while (!stop && step < total_steps && (by_steps || epoch < t.epochs)) {
    const auto started = std::chrono::steady_clock::now();
    std::vector<data::Batch> micro;
    for (int a = 0; a < t.grad_accumulation; ++a) {
      const std::vector<int64_t> idx = sampler.next_batch();
      if (idx.empty()) break;
      std::vector<data::TokenizedExample> examples;
      for (int64_t i : idx) examples.push_back(train_split.example(static_cast<size_t>(i)));
      micro.push_back(data::collate(examples, kind, collate));
    }
    if (micro.empty()) {  // an epoch with no batches left (resumed at its very end)
      sampler.set_epoch(++epoch);
      continue;
    }
    const double lr_multiplier = opine::lr_multiplier(t.schedule, step, total_steps);
    const StepStats stats = train_step(model, optimizer, micro, class_weights, t, lr_multiplier, cpu);
    ++step;
    const double loss = stats.loss, grad_norm = stats.grad_norm, tokens = stats.tokens;
    OPINE_CHECK(std::isfinite(loss), "step ", step, ": the loss is ", loss, " (lower train.optimizer.lr?)");

    const bool epoch_done = sampler.state().position >= sampler.num_batches();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (step % t.log_every == 0 || step == total_steps) {
      json r = {{"step", step},
                {"epoch", double(epoch) + double(sampler.state().position) /
                                              double(std::max<int64_t>(sampler.num_batches(), 1))},
                {"loss", loss},
                {"lr", t.optimizer.lr * lr_multiplier},
                {"grad_norm", grad_norm},
                {"tokens_per_s", tokens / std::max(seconds, 1e-9)},
                {"step_seconds", seconds}};
      r.update(memory_json(device));
      record(r);
      if (lead)
        log::info("step ", step, "/", total_steps, " loss ", loss, " lr ", t.optimizer.lr * lr_multiplier,
                  " grad_norm ", grad_norm);
    }
    if (epoch_done) sampler.set_epoch(++epoch);

    const bool last = step >= total_steps || (!by_steps && epoch >= t.epochs);
    const bool eval_now =
        eval_split && (t.eval_every > 0 ? step % t.eval_every == 0 || last : epoch_done || last);
    std::optional<double> value;
    if (eval_now) {
      last_eval = run_eval();
      last_eval["step"] = step;
      value =
          metric == "loss" ? last_eval.at("loss").get<double>() : metrics::metric_value(last_eval, metric);
      const bool better = std::isnan(best) || (greater ? *value > best : *value < best);
      if (better) {
        best = *value;
        evals_without_gain = 0;
      } else if (++evals_without_gain >= t.patience && t.patience > 0) {
        if (lead)
          log::info("early stop: ", metric, " has not improved for ", evals_without_gain, " evaluations");
        stop = true;
      }
      if (on_eval && on_eval(step, *value, last_eval)) {
        if (lead) log::info("step ", step, ": stopped by the sweep (pruned)");
        stop = stopped_by_hook = true;
      }
    }
    // Every rank stops at the same step when any of them was signalled.
    const bool signalled = all_sum(cpu, g_stop_requested.load() ? 1.0 : 0.0) > 0;
    const bool halt = ((t.stop_at_step > 0 && step == t.stop_at_step) || signalled) && !last;
    if ((t.checkpoint.every > 0 ? step % t.checkpoint.every == 0 : eval_now) || last || stop || halt)
      checkpoint(value);
    if (halt) {
      if (lead)
        log::info("stopped at step ", step, signalled ? " (signalled)" : " (train.stop_at_step)",
                  ": --resume continues");
      std::signal(SIGUSR1, SIG_DFL);
      std::signal(SIGTERM, SIG_DFL);
      TrainResult stopped;
      stopped.steps = step;
      stopped.run_dir = paths.root;
      stopped.metrics = last_eval;
      return stopped;
    }
  }

  std::signal(SIGUSR1, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);

  // ---- save the final adapter and report
  TrainResult result;
  result.steps = step;
  result.stopped_by_hook = stopped_by_hook;
  result.run_dir = paths.root;
  result.adapter_dir = paths.root / "adapter";
  const fs::path staging = paths.root / "adapter.tmp";
  if (lead && fs::exists(staging)) fs::remove_all(staging);
  cpu.barrier();
  model.save_adapter(staging, lead);
  if (lead) {
    describe_adapter(staging, resolved_yaml, cache.classes, model.label_kind());
    fs::remove_all(result.adapter_dir);
    fs::rename(staging, result.adapter_dir);
    json final_report = {{"steps", step},
                         {"metric", metric},
                         {"best", std::isnan(best) ? json() : json(best)},
                         {"eval", last_eval},
                         {"memory_peak", memory_json(device)}};
    write_json_atomic(paths.root / "final_metrics.json", final_report);
    if (o.eval.plots) draw_plots("run", paths.root);  // loss and metric curves (plots/*.png)
  }
  cpu.barrier();
  log::info("rank ", rank, " peak memory: ", memory_json(device).dump());
  result.metrics = last_eval;
  return result;
}

}  // namespace opine::launch
