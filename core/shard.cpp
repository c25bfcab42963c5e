#include "core/shard.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cmath>
#include <mutex>
#include <optional>
#include <sstream>

#include "core/error.h"
#include "core/log.h"

namespace opine::dist {

ShardMode parse_shard_mode(const std::string& name) {
  if (name == "full_shard") return ShardMode::kFullShard;
  if (name == "shard_grad_op") return ShardMode::kShardGradOp;
  if (name == "replicate") return ShardMode::kReplicate;
  OPINE_CHECK(false, "unknown sharding mode '", name, "' (full_shard, shard_grad_op or replicate)");
  return ShardMode::kReplicate;
}

const char* shard_mode_name(ShardMode mode) {
  switch (mode) {
    case ShardMode::kFullShard:
      return "full_shard";
    case ShardMode::kShardGradOp:
      return "shard_grad_op";
    case ShardMode::kReplicate:
      return "replicate";
  }
  return "?";
}

at::ScalarType parse_float_dtype(const std::string& name) {
  if (name == "f32") return at::kFloat;
  if (name == "bf16") return at::kBFloat16;
  if (name == "f16") return at::kHalf;
  if (name == "f64") return at::kDouble;
  OPINE_CHECK(false, "unknown floating-point dtype '", name, "' (f32, bf16, f16 or f64)");
  return at::kFloat;
}

namespace {

constexpr int64_t kAlignBytes = 16;

int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

at::Tensor placeholder(const std::vector<int64_t>& shape, at::ScalarType dtype) {
  return at::empty(shape, at::TensorOptions().dtype(dtype).device(at::kMeta));
}

struct Entry {
  std::string name;
  at::Tensor* slot;
  std::vector<int64_t> shape;
  at::ScalarType dtype;
  int64_t offset = 0;  // bytes (frozen) or elements (trainable)
  int64_t numel = 0;
};

// The default generators' states (the CPU's, and the layer input's accelerator's, whose
// generator dropout on that device draws from), so a recomputed layer draws the same dropout
// masks, as torch.utils.checkpoint's preserve_rng_state does.
struct RngState {
  at::Tensor cpu, device_state;
  void capture(const at::Device& device) {
    cpu = state_of(at::detail::getDefaultCPUGenerator());
    if (!device.is_cpu()) device_state = state_of(at::globalContext().defaultGenerator(device));
  }
  void restore(const at::Device& device) const {
    set(at::detail::getDefaultCPUGenerator(), cpu);
    if (!device.is_cpu() && device_state.defined()) set(at::globalContext().defaultGenerator(device), device_state);
  }

 private:
  static at::Tensor state_of(at::Generator gen) {
    std::lock_guard<std::mutex> lock(gen.mutex());
    return gen.get_state();
  }
  static void set(at::Generator gen, const at::Tensor& state) {
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(state);
  }
};

}  // namespace

// One unit's flat buffers and the views it installs into its slots.
class ShardedUnit {
 public:
  struct Flat {
    int group = 0;
    std::vector<Entry> entries;
    int64_t numel = 0;  // padded to a multiple of the world size
    int64_t shard_numel = 0;
    at::Tensor whole;   // float32 leaf requiring grad (shard_grad_op, replicate)
    at::Tensor master;  // float32 leaf requiring grad: this rank's shard (full_shard, shard_grad_op)
  };

  ShardedUnit(ShardedModel& owner, ShardedModel::Unit unit, Communicator* node, const GroupOf& group_of)
      : owner_(owner), name_(std::move(unit.name)) {
    Communicator& world = *owner_.world_;
    const int64_t ranks = world.size();
    // Layout: the same on every rank, from shapes and dtypes alone.
    int64_t bytes = 0;
    for (const TensorSlot& s : unit.slots) {
      const at::Tensor& t = *s.tensor;
      OPINE_ASSERT(t.defined(), name_, ".", s.name, " is undefined");
      Entry e{s.name, s.tensor, t.sizes().vec(), t.scalar_type(), 0, t.numel()};
      if (t.requires_grad()) {
        OPINE_CHECK(at::isFloatingType(t.scalar_type()), name_, ".", s.name, " trains but is ",
                    c10::toString(t.scalar_type()));
        const int group = group_of(name_ + "." + s.name);
        Flat* flat = nullptr;
        for (Flat& f : flats_)
          if (f.group == group) flat = &f;
        if (!flat) {
          flats_.push_back(Flat{group, {}, 0, 0, {}, {}});
          flat = &flats_.back();
        }
        e.offset = flat->numel;
        flat->numel += e.numel;
        flat->entries.push_back(std::move(e));
      } else {
        e.offset = bytes;
        bytes = round_up(bytes + e.numel * int64_t(c10::elementSize(e.dtype)), kAlignBytes);
        frozen_.push_back(std::move(e));
      }
    }
    frozen_bytes_ = round_up(std::max<int64_t>(bytes, 1), kAlignBytes * ranks);
    frozen_shard_bytes_ = frozen_bytes_ / ranks;
    for (Flat& f : flats_) {
      f.numel = round_up(f.numel, ranks);
      f.shard_numel = f.numel / ranks;
    }

    // Values: flattened where they are (node rank 0, or every rank), broadcast inside the node.
    const bool source = !node || node->rank() == 0;
    const auto bytes_opts = at::TensorOptions().dtype(at::kByte);
    at::Tensor frozen_whole = at::zeros({frozen_bytes_}, bytes_opts);
    std::vector<at::Tensor> trainable_whole;
    {
      at::NoGradGuard no_grad;
      if (source) {
        for (const Entry& e : frozen_) {
          const at::Tensor t = e.slot->detach().to(at::kCPU).contiguous().reshape({-1}).view(at::kByte);
          frozen_whole.narrow(0, e.offset, t.numel()).copy_(t);
        }
      }
      for (Flat& f : flats_) {
        at::Tensor w = at::zeros({f.numel}, at::kFloat);
        if (source)
          for (const Entry& e : f.entries)
            w.narrow(0, e.offset, e.numel).copy_(e.slot->detach().to(at::kCPU).reshape({-1}));
        trainable_whole.push_back(w);
      }
      if (node && node->size() > 1) {
        node->broadcast(frozen_whole, 0);
        for (at::Tensor& w : trainable_whole) node->broadcast(w, 0);
      }
      const int64_t r = world.rank();
      const at::Device device = owner_.device_;
      if (owner_.mode_ == ShardMode::kFullShard) {
        frozen_store_ =
            frozen_whole.narrow(0, r * frozen_shard_bytes_, frozen_shard_bytes_).clone().to(device);
      } else {
        frozen_store_ = frozen_whole.to(device);
      }
      for (size_t i = 0; i < flats_.size(); ++i) {
        Flat& f = flats_[i];
        const at::Tensor w = trainable_whole[i].to(device);
        if (owner_.mode_ != ShardMode::kReplicate)
          f.master = w.narrow(0, r * f.shard_numel, f.shard_numel).clone().set_requires_grad(true);
        if (owner_.mode_ != ShardMode::kFullShard) f.whole = w.clone().set_requires_grad(true);
      }
    }
    release();
  }

  bool has_trainable() const { return !flats_.empty(); }

  // full_shard: starts gathering this unit (frozen bytes and trainable flats) so the transfer
  // overlaps the computation of the unit before it; the next gather() waits for it. Values
  // must not change in between (the trainer prefetches only units about to run).
  void prefetch() {
    if (owner_.mode_ != ShardMode::kFullShard || in_flight_) return;
    InFlight p;
    p.bytes = at::empty({frozen_bytes_}, frozen_store_.options());
    p.work.push_back(owner_.world_->all_gather_async(frozen_store_, p.bytes));
    for (Flat& f : flats_) {
      p.flats.push_back(at::empty({f.numel}, f.master.options().requires_grad(false)));
      p.work.push_back(owner_.world_->all_gather_async(f.master.detach(), p.flats.back()));
    }
    in_flight_ = std::move(p);
  }
  bool in_graph = false;  // ran through UnitFunction this step: its backward will come
  const std::string& name() const { return name_; }
  std::vector<Flat>& flats() { return flats_; }

  // Installs the frozen views and trainable views for computing (forward or no-grad use).
  void gather() {
    if (owner_.mode_ == ShardMode::kFullShard) {
      const Gathered g = fetch();
      install_frozen(g.bytes);
      for (size_t i = 0; i < flats_.size(); ++i)
        install_trainable(flats_[i], g.flats[i].to(owner_.param_dtype_));
    } else {
      install_frozen(frozen_store_);
      for (Flat& f : flats_) install_trainable(f, f.whole);
    }
  }

  // For backward's recompute: like gather(), but returns the tensors gradients are wanted for
  // (full_shard: fresh leaves of the gathered values; else the whole leaves themselves).
  std::vector<at::Tensor> gather_for_backward() {
    std::vector<at::Tensor> wrt;
    if (owner_.mode_ == ShardMode::kFullShard) {
      const Gathered gathered = fetch();
      install_frozen(gathered.bytes);
      for (size_t i = 0; i < flats_.size(); ++i) {
        at::Tensor g = gathered.flats[i].to(owner_.param_dtype_).detach().set_requires_grad(true);
        install_trainable(flats_[i], g);
        wrt.push_back(g);
      }
    } else {
      install_frozen(frozen_store_);
      for (Flat& f : flats_) {
        install_trainable(f, f.whole);
        wrt.push_back(f.whole);
      }
    }
    return wrt;
  }

  // The tensors a recompute-in-backward function takes as inputs (gradients flow to them).
  std::vector<at::Tensor> autograd_inputs() const {
    std::vector<at::Tensor> inputs;
    for (const Flat& f : flats_) inputs.push_back(owner_.mode_ == ShardMode::kFullShard ? f.master : f.whole);
    return inputs;
  }

  // The gradient of a whole flat buffer, reduced into this rank's shard (full_shard backward).
  at::Tensor reduce_scatter(const Flat& f, const at::Tensor& whole_grad) {
    at::Tensor in =
        whole_grad.defined()
            ? whole_grad.to(owner_.reduce_dtype_).contiguous()
            : at::zeros({f.numel}, at::TensorOptions().dtype(owner_.reduce_dtype_).device(owner_.device_));
    at::Tensor out = at::empty({f.shard_numel}, in.options());
    owner_.world_->reduce_scatter(in, out, ReduceOp::kSum);
    return out.to(at::kFloat);
  }

  // Slots back to shape-only placeholders (full_shard: the gathered buffers are freed).
  void release() {
    for (Entry& e : frozen_) *e.slot = placeholder(e.shape, e.dtype);
    for (Flat& f : flats_)
      for (Entry& e : f.entries) *e.slot = placeholder(e.shape, e.dtype);
  }

  // shard_grad_op / replicate, after backward.
  void reduce_gradients() {
    for (Flat& f : flats_) {
      at::Tensor grad = f.whole.grad().defined() ? f.whole.grad() : at::zeros_like(f.whole);
      if (owner_.mode_ == ShardMode::kReplicate) {
        at::Tensor g = grad.to(owner_.reduce_dtype_);
        owner_.world_->all_reduce(g, ReduceOp::kSum);
        f.whole.mutable_grad() = g.to(at::kFloat);
      } else {
        f.master.mutable_grad() = reduce_scatter(f, grad);
        f.whole.mutable_grad() = at::Tensor();
      }
    }
  }

  // shard_grad_op: the updated shards, gathered into the whole buffers.
  void after_step() {
    if (owner_.mode_ != ShardMode::kShardGradOp) return;
    at::NoGradGuard no_grad;
    for (Flat& f : flats_) {
      at::Tensor whole = at::empty({f.numel}, f.master.options().requires_grad(false));
      owner_.world_->all_gather(f.master.detach(), whole);
      f.whole.detach().copy_(whole);
    }
  }

  // Whole trainable values installed (detached), for saving or loading; written-back afterwards.
  void with_trainables(const std::function<void()>& fn) {
    std::vector<at::Tensor> wholes;
    {
      at::NoGradGuard no_grad;
      for (Flat& f : flats_) {
        at::Tensor w = owner_.mode_ == ShardMode::kFullShard ? gather_flat(f) : f.whole.detach().clone();
        install_trainable(f, w);
        wholes.push_back(w);
      }
    }
    fn();
    at::NoGradGuard no_grad;
    const int64_t r = owner_.world_->rank();
    for (size_t i = 0; i < flats_.size(); ++i) {
      Flat& f = flats_[i];
      for (const Entry& e : f.entries)  // whether fn wrote into the views or replaced the tensors
        wholes[i]
            .narrow(0, e.offset, e.numel)
            .copy_(e.slot->detach().reshape({-1}).to(wholes[i].device(), at::kFloat));
      if (f.master.defined()) f.master.detach().copy_(wholes[i].narrow(0, r * f.shard_numel, f.shard_numel));
      if (f.whole.defined()) f.whole.detach().copy_(wholes[i]);
    }
    release();
  }

  int64_t resident_bytes() const {
    int64_t n = frozen_store_.nbytes();
    for (const Flat& f : flats_) {
      if (f.master.defined()) n += f.master.nbytes();
      if (f.whole.defined()) n += f.whole.nbytes();
    }
    return n;
  }
  int64_t frozen_bytes() const { return frozen_bytes_; }
  int64_t trainable_numel() const {
    int64_t n = 0;
    for (const Flat& f : flats_) n += f.numel;
    return n;
  }

 private:
  // The whole frozen bytes and trainable flats: what prefetch() started, or gathered now.
  struct Gathered {
    at::Tensor bytes;
    std::vector<at::Tensor> flats;
  };
  Gathered fetch() {
    prefetch();
    for (auto& w : in_flight_->work) w->wait();
    Gathered g{in_flight_->bytes, in_flight_->flats};
    in_flight_.reset();
    return g;
  }
  at::Tensor gather_flat(const Flat& f) {
    at::Tensor whole = at::empty({f.numel}, f.master.options().requires_grad(false));
    owner_.world_->all_gather(f.master.detach(), whole);
    return whole;
  }
  void install_frozen(const at::Tensor& bytes) {
    for (Entry& e : frozen_) {
      const int64_t n = e.numel * int64_t(c10::elementSize(e.dtype));
      *e.slot = bytes.narrow(0, e.offset, n).view(e.dtype).view(e.shape);
    }
  }
  void install_trainable(Flat& f, const at::Tensor& whole) {
    for (Entry& e : f.entries) {
      at::Tensor v = whole.narrow(0, e.offset, e.numel).view(e.shape);
      *e.slot = v.scalar_type() == e.dtype ? v : v.to(e.dtype);
    }
  }

  ShardedModel& owner_;
  std::string name_;
  std::vector<Entry> frozen_;
  int64_t frozen_bytes_ = 0, frozen_shard_bytes_ = 0;
  at::Tensor frozen_store_;  // uint8: this rank's shard (full_shard) or the whole buffer
  std::vector<Flat> flats_;
  struct InFlight {
    at::Tensor bytes;
    std::vector<at::Tensor> flats;
    std::vector<std::unique_ptr<Work>> work;
  };
  std::optional<InFlight> in_flight_;
};

// A unit run without keeping its activations: forward under no-grad with the weights gathered,
// backward gathers again, recomputes with grad, and hands out the gradients (reduce-scattered
// into the shards under full_shard).
struct UnitFunction : public torch::autograd::Function<UnitFunction> {
  using LayerFn = std::function<at::Tensor(const at::Tensor&)>;

  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, at::TensorList params,
                            ShardedModel* model, int64_t index, LayerFn* layer) {
    ctx->saved_data["model"] = reinterpret_cast<int64_t>(model);
    ctx->saved_data["index"] = index;
    ctx->saved_data["layer"] = reinterpret_cast<int64_t>(layer);
    ctx->saved_data["x_requires_grad"] = x.requires_grad();
    RngState rng;
    rng.capture(x.device());
    ctx->saved_data["rng"] = rng.cpu;
    if (rng.device_state.defined()) ctx->saved_data["rng_device"] = rng.device_state;
    ctx->save_for_backward({x});
    ShardedUnit& unit = *model->units_[index];
    at::NoGradGuard no_grad;
    unit.gather();
    unit.in_graph = true;
    model->prefetch(index + 1);
    at::Tensor y = (*layer)(x);
    unit.release();
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    auto* model = reinterpret_cast<ShardedModel*>(ctx->saved_data["model"].toInt());
    auto* layer = reinterpret_cast<LayerFn*>(ctx->saved_data["layer"].toInt());
    ShardedUnit& unit = *model->units_[ctx->saved_data["index"].toInt()];
    const bool x_grad = ctx->saved_data["x_requires_grad"].toBool();
    const at::Tensor x = ctx->get_saved_variables()[0];

    RngState now, then;
    now.capture(x.device());
    then.cpu = ctx->saved_data["rng"].toTensor();
    if (ctx->saved_data.count("rng_device")) then.device_state = ctx->saved_data["rng_device"].toTensor();
    then.restore(x.device());
    // Backward runs with grad mode off: the views of the gathered weights must be made with it on,
    // or the recomputed output would not depend on them.
    std::vector<at::Tensor> wrt;
    at::Tensor xin = x.detach().set_requires_grad(x_grad);
    at::Tensor y;
    {
      at::AutoGradMode grad_mode(true);
      wrt = unit.gather_for_backward();
      unit.in_graph = false;
      const int64_t index = ctx->saved_data["index"].toInt();
      if (index > 0 && model->units_[index - 1]->in_graph) model->prefetch(index - 1);
      y = (*layer)(xin);
    }
    now.restore(x.device());
    std::vector<at::Tensor> inputs;
    if (x_grad) inputs.push_back(xin);
    inputs.insert(inputs.end(), wrt.begin(), wrt.end());
    std::vector<at::Tensor> grads = torch::autograd::grad({y}, inputs, {grad_out[0]}, /*retain_graph=*/false,
                                                          /*create_graph=*/false, /*allow_unused=*/true);
    y = at::Tensor();
    unit.release();

    torch::autograd::variable_list result;
    result.push_back(x_grad ? grads[0] : at::Tensor());
    auto& flats = unit.flats();
    for (size_t i = 0; i < flats.size(); ++i) {
      const at::Tensor& g = grads[(x_grad ? 1 : 0) + i];
      if (model->mode_ == ShardMode::kFullShard) {
        result.push_back(unit.reduce_scatter(flats[i], g));
      } else {
        result.push_back(g.defined() ? g.to(at::kFloat) : at::Tensor());
      }
    }
    result.push_back(at::Tensor());  // model
    result.push_back(at::Tensor());  // index
    result.push_back(at::Tensor());  // layer
    return result;
  }
};

ShardedModel::ShardedModel(std::vector<Unit> units, std::vector<TensorSlot> root, Communicator& world,
                           Communicator* node, const ShardOptions& options, at::Device device,
                           const GroupOf& group_of)
    : world_(&world),
      mode_(world.size() > 1 ? parse_shard_mode(options.mode) : ShardMode::kReplicate),
      recompute_(options.activation_checkpointing || mode_ == ShardMode::kFullShard),
      device_(device),
      param_dtype_(parse_float_dtype(options.param_dtype)),
      reduce_dtype_(parse_float_dtype(options.reduce_dtype)),
      prefetch_(options.prefetch) {
  for (Unit& u : units) units_.push_back(std::make_unique<ShardedUnit>(*this, std::move(u), node, group_of));
  at::NoGradGuard no_grad;
  for (TensorSlot& s : root) {
    if (node && node->size() > 1) {
      at::Tensor t = s.tensor->detach();
      OPINE_ASSERT(t.is_contiguous(), s.name, " is not contiguous");
      node->broadcast(t, 0);
    }
    if (s.tensor->requires_grad()) {
      root_trainable_.push_back(s);
      root_groups_.push_back(group_of(s.name));
    }
  }
}

ShardedModel::~ShardedModel() = default;

at::Tensor ShardedModel::run(int index, const at::Tensor& x,
                             const std::function<at::Tensor(const at::Tensor&)>& layer) {
  OPINE_ASSERT(index >= 0 && index < static_cast<int>(units_.size()), "layer ", index, " of ", units_.size());
  ShardedUnit& unit = *units_[index];
  const bool training = at::GradMode::is_enabled() && (x.requires_grad() || unit.has_trainable());
  if (!training) {
    at::Tensor y;
    {
      unit.gather();
      prefetch(index + 1);
      y = layer(x);
    }
    if (mode_ == ShardMode::kFullShard) unit.release();
    return y;
  }
  if (!recompute_) {
    unit.gather();
    return layer(x);
  }
  auto kept = std::make_shared<UnitFunction::LayerFn>(layer);
  pending_.push_back(kept);
  const std::vector<at::Tensor> inputs = unit.autograd_inputs();
  return UnitFunction::apply(x, at::TensorList(inputs), this, static_cast<int64_t>(index), kept.get());
}

std::vector<FlatParam> ShardedModel::parameters() const {
  std::vector<FlatParam> params;
  for (const auto& u : units_)
    for (const ShardedUnit::Flat& f : u->flats()) {
      FlatParam p;
      p.name = u->name() + "/group " + std::to_string(f.group);
      p.group = f.group;
      p.param = mode_ == ShardMode::kReplicate ? f.whole : f.master;
      p.sharded = mode_ != ShardMode::kReplicate;
      params.push_back(p);
    }
  for (size_t i = 0; i < root_trainable_.size(); ++i)
    params.push_back(FlatParam{root_trainable_[i].name, root_groups_[i], *root_trainable_[i].tensor, false});
  return params;
}

void ShardedModel::reduce_gradients() {
  if (mode_ != ShardMode::kFullShard)
    for (auto& u : units_) u->reduce_gradients();
  if (world_->size() > 1) {
    for (TensorSlot& s : root_trainable_) {
      at::Tensor& t = *s.tensor;
      at::Tensor g = t.grad().defined() ? t.grad().to(reduce_dtype_).contiguous()
                                        : at::zeros_like(t, t.options().dtype(reduce_dtype_));
      world_->all_reduce(g, ReduceOp::kSum);
      t.mutable_grad() = g.to(t.scalar_type());
    }
  }
  pending_.clear();
}

double ShardedModel::grad_norm() {
  double sharded = 0.0, whole = 0.0;
  auto sq = [](const at::Tensor& g) {
    return g.defined() ? g.to(at::kDouble).pow(2).sum().item<double>() : 0.0;
  };
  for (const FlatParam& p : parameters()) (p.sharded ? sharded : whole) += sq(p.param.grad());
  if (world_->size() > 1 && mode_ != ShardMode::kReplicate) {
    at::Tensor t = at::full({1}, sharded, at::TensorOptions().dtype(at::kDouble).device(device_));
    world_->all_reduce(t, ReduceOp::kSum);
    sharded = t.item<double>();
  }
  return std::sqrt(sharded + whole);
}

void ShardedModel::scale_gradients(double factor) {
  at::NoGradGuard no_grad;
  for (const FlatParam& p : parameters())
    if (p.param.grad().defined()) p.param.mutable_grad().mul_(factor);
}

void ShardedModel::after_step() {
  for (auto& u : units_) u->after_step();
}

void ShardedModel::zero_grad() {
  for (const FlatParam& p : parameters()) p.param.mutable_grad() = at::Tensor();
  for (auto& u : units_)
    for (ShardedUnit::Flat& f : u->flats())
      if (f.whole.defined()) f.whole.mutable_grad() = at::Tensor();
  pending_.clear();
}

void ShardedModel::with_full_trainables(const std::function<void()>& fn) {
  // Nested so every unit's trainables are installed at once.
  std::function<void(size_t)> step = [&](size_t i) {
    if (i == units_.size()) return fn();
    units_[i]->with_trainables([&] { step(i + 1); });
  };
  step(0);
}

void ShardedModel::prefetch(int index) {
  if (prefetch_ && index >= 0 && index < static_cast<int>(units_.size())) units_[index]->prefetch();
}

int64_t ShardedModel::resident_bytes() const {
  int64_t n = 0;
  for (const auto& u : units_) n += u->resident_bytes();
  return n;
}

std::string ShardedModel::describe() const {
  int64_t frozen = 0, trainable = 0;
  for (const auto& u : units_) {
    frozen += u->frozen_bytes();
    trainable += u->trainable_numel();
  }
  std::ostringstream out;
  out << shard_mode_name(mode_) << " over " << world_->size() << " rank(s) (" << world_->backend()
      << "): " << units_.size() << " layers, " << frozen / 1048576.0 << " MiB frozen and " << trainable
      << " trainable elements in all; this rank holds " << resident_bytes() / 1048576.0 << " MiB"
      << (recompute_ ? "; layers recomputed in backward" : "");
  return out.str();
}

}  // namespace opine::dist
