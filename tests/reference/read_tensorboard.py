"""Reads a folder of TensorBoard event files with tensorboard's own code, for opine's tests.

Prints one JSON object: "records", every event of every events.out.tfevents.* file (in name
order) as its record reader returns it, CRCs checked (a bad or truncated record is an error,
exit status 1); and "scalars", what TensorBoard shows, {tag: [[step, value], ...]}, from its
EventAccumulator (which drops the steps a later SessionLog START supersedes).
Usage: read_tensorboard.py DIR
"""
import json
import pathlib
import sys

from tensorboard.backend.event_processing import event_accumulator
from tensorboard.compat.proto import event_pb2
from tensorboard.compat.tensorflow_stub import errors
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import PyRecordReader_New


def records(path):
    reader = PyRecordReader_New(str(path))
    out = []
    while True:
        try:
            reader.GetNext()
        except errors.OutOfRangeError:
            return out
        event = event_pb2.Event.FromString(reader.record())
        item = {"file": path.name, "wall_time": event.wall_time, "step": event.step, "what": event.WhichOneof("what")}
        if item["what"] == "file_version":
            item["file_version"] = event.file_version
        elif item["what"] == "summary":
            item["values"] = [[v.tag, v.simple_value] for v in event.summary.value]
        elif item["what"] == "session_log":
            item["status"] = event.session_log.status
        out.append(item)


def main():
    folder = pathlib.Path(sys.argv[1])
    result = {"records": []}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        result["records"] += records(path)
    acc = event_accumulator.EventAccumulator(str(folder), size_guidance={event_accumulator.SCALARS: 0})
    acc.Reload()
    result["scalars"] = {tag: [[e.step, e.value] for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
