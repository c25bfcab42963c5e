"""References for the run-tracking pieces of opine's trainer.

schedules.json    transformers' learning-rate schedules (get_constant_schedule,
                  get_constant_schedule_with_warmup, get_linear_schedule_with_warmup,
                  get_cosine_schedule_with_warmup): the LambdaLR multiplier after each of 0 .. total+2
                  scheduler steps, on a dummy optimizer with lr 1.0. A warmup given as a ratio is
                  resolved by TrainingArguments.get_warmup_steps.
adamw.json        torch.optim.AdamW (foreach=False) over three groups (lr scale 1 and 0.5 with weight
                  decay, one without), five steps of fixed seeded gradients (one parameter has none at
                  step 1), lr 1e-2 times a per-step multiplier: the parameters after every step and
                  the final states.
tensorboard.json  tensorflow.Event protobufs built with tensorboard's own proto classes and framed
                  by its RecordWriter: the exact bytes of each record, in hex.
"""
import io
import json
import math
import pathlib
import types

import torch
from transformers import TrainingArguments
from transformers.optimization import (get_constant_schedule, get_constant_schedule_with_warmup,
                                       get_cosine_schedule_with_warmup, get_linear_schedule_with_warmup)

# (kind, warmup_steps, warmup_ratio, total, num_cycles)
SCHEDULES = [
    ("constant", 0, 0.0, 10, 0.5),
    ("constant_with_warmup", 3, 0.0, 10, 0.5),
    ("constant_with_warmup", 0, 0.25, 10, 0.5),
    ("linear", 0, 0.0, 10, 0.5),
    ("linear", 4, 0.0, 10, 0.5),
    ("linear", 0, 0.1, 25, 0.5),  # ceil(2.5) = 3 warmup steps
    ("linear", 12, 0.0, 10, 0.5),  # warmup longer than the run
    ("linear", 0, 0.0, 1, 0.5),
    ("cosine", 0, 0.0, 10, 0.5),
    ("cosine", 5, 0.0, 20, 0.5),
    ("cosine", 0, 0.0, 7, 1.5),
    ("cosine", 0, 0.06, 100, 0.5),
    ("cosine", 3, 0.0, 3, 0.5),  # warmup equal to the run
]


def schedule_multipliers(kind, warmup, total, num_cycles):
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=1.0)
    if kind == "constant":
        sched = get_constant_schedule(opt)
    elif kind == "constant_with_warmup":
        sched = get_constant_schedule_with_warmup(opt, num_warmup_steps=warmup)
    elif kind == "linear":
        sched = get_linear_schedule_with_warmup(opt, num_warmup_steps=warmup, num_training_steps=total)
    else:
        sched = get_cosine_schedule_with_warmup(opt, num_warmup_steps=warmup, num_training_steps=total,
                                                num_cycles=num_cycles)
    out = [sched.get_last_lr()[0]]
    for _ in range(total + 2):
        opt.step()
        sched.step()
        out.append(sched.get_last_lr()[0])
    return [float(v) for v in out]


def generate_schedules(out: pathlib.Path):
    cases = []
    for kind, warmup_steps, warmup_ratio, total, num_cycles in SCHEDULES:
        # transformers 5 takes a ratio as a warmup_steps below 1.
        warmup = TrainingArguments.get_warmup_steps(
            types.SimpleNamespace(warmup_steps=warmup_steps if warmup_steps > 0 else warmup_ratio), total)
        cases.append({"kind": kind, "warmup_steps": warmup_steps, "warmup_ratio": warmup_ratio, "total": total,
                      "num_cycles": num_cycles, "warmup": warmup,
                      "multipliers": schedule_multipliers(kind, warmup, total, num_cycles)})
    (out / "schedules.json").write_text(json.dumps(cases, indent=1))


# (group, lr scale, weight decay on, parameter shapes)
ADAMW_GROUPS = [
    ("decay", 1.0, True, [(4, 3), (5,)]),
    ("scaled", 0.5, True, [(3, 2)]),
    ("no_decay", 1.0, False, [(6,)]),
]
ADAMW = {"lr": 1e-2, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.1}
MULTIPLIERS = [1.0, 0.8, 0.6, 0.4, 0.2]
NO_GRAD = {(1, "scaled", 0)}  # (step, group, index) without a gradient


def generate_adamw(out: pathlib.Path):
    gen = torch.Generator().manual_seed(20240611)
    groups, torch_groups = [], []
    for name, scale, decay, shapes in ADAMW_GROUPS:
        params = [torch.nn.Parameter(torch.randn(shape, generator=gen)) for shape in shapes]
        groups.append({"name": name, "lr_scale": scale, "weight_decay": decay,
                       "params": [{"shape": list(p.shape), "init": p.detach().flatten().tolist()} for p in params]})
        torch_groups.append({"params": params, "weight_decay": ADAMW["weight_decay"] if decay else 0.0})
    opt = torch.optim.AdamW(torch_groups, lr=ADAMW["lr"], betas=(ADAMW["beta1"], ADAMW["beta2"]), eps=ADAMW["eps"],
                            weight_decay=ADAMW["weight_decay"], foreach=False, fused=False)
    steps = []
    for step, mult in enumerate(MULTIPLIERS):
        grads = {}
        for (name, scale, _, _), group in zip(ADAMW_GROUPS, opt.param_groups):
            group["lr"] = ADAMW["lr"] * scale * mult  # what opine's AdamW computes: (lr * scale) * mult
            grads[name] = []
            for i, p in enumerate(group["params"]):
                if (step, name, i) in NO_GRAD:
                    p.grad = None
                    grads[name].append(None)
                else:
                    # Gradients of a few magnitudes, so the moments and eps all matter.
                    p.grad = torch.randn(p.shape, generator=gen) * 10.0 ** (step - 2)
                    grads[name].append(p.grad.flatten().tolist())
        opt.step()
        steps.append({"multiplier": mult, "grads": grads,
                      "params": {name: [p.detach().flatten().tolist() for p in group["params"]]
                                 for (name, *_), group in zip(ADAMW_GROUPS, opt.param_groups)}})
    final = {}
    for (name, *_), group in zip(ADAMW_GROUPS, opt.param_groups):
        final[name] = [{"step": int(opt.state[p]["step"].item()),
                        "exp_avg": opt.state[p]["exp_avg"].flatten().tolist(),
                        "exp_avg_sq": opt.state[p]["exp_avg_sq"].flatten().tolist()} for p in group["params"]]
    (out / "adamw.json").write_text(json.dumps({"options": ADAMW, "groups": groups, "steps": steps, "final": final}))


def generate_tensorboard(out: pathlib.Path):
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    def record(event):
        buf = io.BytesIO()
        RecordWriter(buf).write(event.SerializeToString())
        return buf.getvalue().hex()

    def scalar(wall_time, step, tag, value):
        value = float(torch.tensor(value, dtype=torch.float32))  # simple_value is a float32
        ev = event_pb2.Event(wall_time=wall_time, step=step, summary=summary_pb2.Summary(
            value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)]))
        return {"kind": "scalar", "wall_time": wall_time, "step": step, "tag": tag, "value": value, "record": record(ev)}

    cases = [
        {"kind": "file_version", "wall_time": 1717171717.125, "version": "brain.Event:2",
         "record": record(event_pb2.Event(wall_time=1717171717.125, file_version="brain.Event:2"))},
        scalar(1717171718.5, 0, "train/loss", 0.0),
        scalar(1717171719.25, 7, "train/loss", 2.345),
        scalar(1717171720.0, 2 ** 40 + 3, "eval/accuracy (é)", -1e30),
        scalar(0.0, 300, "x" * 200, math.pi),  # a tag longer than one varint byte
        {"kind": "session_start", "wall_time": 1717171721.75, "step": 12,
         "record": record(event_pb2.Event(wall_time=1717171721.75, step=12,
                                          session_log=event_pb2.SessionLog(status=event_pb2.SessionLog.START)))},
    ]
    (out / "tensorboard.json").write_text(json.dumps(cases, indent=1, ensure_ascii=False), encoding="utf-8")


def generate(out: pathlib.Path):
    generate_schedules(out)
    generate_adamw(out)
    generate_tensorboard(out)


if __name__ == "__main__":
    import sys
    generate(pathlib.Path(sys.argv[1]))
