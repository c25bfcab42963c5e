// FSDP-style sharding of a model's layers across the ranks of a communicator.
//
// Each unit (a decoder layer) flattens its tensors into two kinds of flat buffer:
//   - frozen: every tensor that does not train (dense weights, norms, the packed 4-bit codes and
//     their scales), laid end to end as raw bytes, each at a 16-byte aligned offset. Sharding bytes
//     rather than elements means the 4-bit storage dtype, the model dtype and the sharding dtype
//     can never disagree: a tensor is cut and re-assembled bit for bit and read back in the dtype
//     it was made with (the FSDP + QLoRA failure where packed uint8 weights are flattened as bf16
//     cannot happen);
//   - trainable: the tensors that require grad, one float32 buffer per optimizer group (so LoRA+
//     learning rates and weight-decay exclusions survive flattening), the master copy the
//     optimizer updates.
// Both are padded to a multiple of the world size; rank r keeps elements [r * n, (r + 1) * n).
//
// Modes (FSDP's names):
//   full_shard      parameters, gradients and optimizer state sharded. A unit is all-gathered just
//                   before its forward and again before its backward (where its forward is
//                   recomputed: activation checkpointing comes with it), and freed after; gradients
//                   are reduce-scattered in backward. The next layer's gather (the previous one's
//                   in backward) is started before this one computes (Communicator::all_gather_async).
//   shard_grad_op   parameters whole on every rank; gradients reduce-scattered and optimizer state
//                   sharded; updated shards all-gathered after each step.
//   replicate       plain data parallel: everything whole, gradients all-reduced.
// With one rank every mode computes as replicate.
//
// Loading once per node: when constructed with a node communicator, only the node's first rank
// needs real values in the slots (the others hold shape-only meta tensors); each unit is
// broadcast inside the node one at a time and every rank keeps only its shard, so host memory
// holds one model per node plus one layer per rank, not one model per rank.
//
// Losses: the trainer divides every rank's loss by the global count (examples or tokens of the
// whole step), so gradients are summed across ranks, never averaged.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/comm.h"
#include "core/config.h"
#include "core/linear.h"

namespace opine::dist {

enum class ShardMode { kFullShard, kShardGradOp, kReplicate };
ShardMode parse_shard_mode(const std::string& name);  // full_shard | shard_grad_op | replicate
const char* shard_mode_name(ShardMode mode);

struct ShardOptions {
  std::string mode = "full_shard";
  std::string param_dtype = "f32";        // trainable parameters are gathered and computed in this dtype
  std::string reduce_dtype = "f32";       // gradients are reduced in this dtype
  bool activation_checkpointing = false;  // recompute each layer in backward (implied by full_shard)
  bool prefetch = true;                   // full_shard: gather the next layer while this one computes
  template <class V>
  void visit(V& v) {
    v("mode", mode,
      "full_shard: parameters, gradients and optimizer state sharded; shard_grad_op: "
      "gradients and optimizer state; replicate: plain data parallel",
      config::one_of({"full_shard", "shard_grad_op", "replicate"}));
    v("param_dtype", param_dtype, "dtype trainable parameters are gathered and computed in",
      config::one_of({"f32", "bf16", "f16"}));
    v("reduce_dtype", reduce_dtype, "dtype gradients are reduced in", config::one_of({"f32", "bf16", "f16"}));
    v("activation_checkpointing", activation_checkpointing,
      "recompute each layer's activations in backward instead of keeping them (always on with full_shard)");
    v("prefetch", prefetch,
      "full_shard: start gathering the next layer (the previous one in backward) "
      "while this one computes");
  }
};

at::ScalarType parse_float_dtype(const std::string& name);  // f32 | bf16 | f16 | f64

// A trainable tensor's optimizer group; the sharded model asks for each trainable slot by its full
// name ("model.layers.0.self_attn.q_proj.lora_A.weight").
using GroupOf = std::function<int(const std::string& name)>;

class ShardedUnit;

// The optimizer's view of one flat trainable buffer (this rank's part of it).
struct FlatParam {
  std::string name;  // "model.layers.3/group 0"
  int group = 0;
  at::Tensor param;      // float32 leaf; its .grad() holds the reduced gradient after reduce_gradients()
  bool sharded = false;  // true: each rank holds a different part (global norms sum over ranks)
};

class ShardedModel {
 public:
  struct Unit {
    std::string name;               // "model.layers.3"
    std::vector<TensorSlot> slots;  // names relative to the unit ("self_attn.q_proj.weight")
  };
  // Takes over the units' slots. `node`: when given, values come from node rank 0 (see above);
  // else every rank must already hold them. `root` slots (embeddings, heads, soft prompt) stay
  // whole on every rank: with `node` they are broadcast from node rank 0 in place; their trainable
  // tensors are all-reduced. `device`: where gathered layers compute.
  ShardedModel(std::vector<Unit> units, std::vector<TensorSlot> root, Communicator& world, Communicator* node,
               const ShardOptions& options, at::Device device, const GroupOf& group_of);
  ~ShardedModel();
  ShardedModel(const ShardedModel&) = delete;
  ShardedModel& operator=(const ShardedModel&) = delete;

  // What a model's layer runner calls: runs unit `index`'s `layer` on x with the unit's weights
  // gathered; in training (grad mode on), through the recompute-in-backward function where the
  // mode or activation checkpointing asks for it.
  at::Tensor run(int index, const at::Tensor& x, const std::function<at::Tensor(const at::Tensor&)>& layer);

  // Every optimizer parameter: the units' flat parameters, then each trainable root tensor.
  std::vector<FlatParam> parameters() const;
  // After all backward passes of a step: all-reduce / reduce-scatter what backward has not reduced.
  void reduce_gradients();
  // Global L2 norm of every gradient (each element counted once across ranks).
  double grad_norm();
  // Multiplies every gradient by `factor` (clipping).
  void scale_gradients(double factor);
  // After the optimizer step: shard_grad_op all-gathers the updated shards.
  void after_step();
  void zero_grad();

  // Calls `fn` with every trainable slot of every unit holding its whole value (float32, CPU
  // or device; all ranks must call it together), e.g. to save an adapter. Frozen slots stay as
  // placeholders meanwhile.
  void with_full_trainables(const std::function<void()>& fn);
  // Whatever `fn` writes into those slots (in place or by replacing the tensors) becomes the new
  // value: how an adapter is loaded on resume. All ranks must write the same values.

  // Bytes this rank holds for the layers (frozen + trainable shards or wholes) and for gathering.
  int64_t resident_bytes() const;
  ShardMode mode() const { return mode_; }
  std::string describe() const;
  const Communicator& world() const { return *world_; }

 private:
  friend class ShardedUnit;
  friend struct UnitFunction;
  Communicator* world_;
  ShardMode mode_;
  bool recompute_;
  at::Device device_;
  at::ScalarType param_dtype_, reduce_dtype_;
  std::vector<std::unique_ptr<ShardedUnit>> units_;
  std::vector<TensorSlot> root_trainable_;
  std::vector<int> root_groups_;
  std::vector<std::shared_ptr<std::function<at::Tensor(const at::Tensor&)>>>
      pending_;  // layers backward will recompute
  bool prefetch_;
  void prefetch(int index);
};

}  // namespace opine::dist
