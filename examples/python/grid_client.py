#!/usr/bin/env python3
"""A small Grid client in Python, from stubs generated from proto/ (generate.sh).

It submits a script job (twice with one request id: the same job comes back),
follows its output to the end with stdout and stderr apart, prints how it ended;
submits another job and cancels it once it runs; and shows the two errors a
client most often branches on, NOT_FOUND and INVALID_ARGUMENT.

    ./generate.sh gen && PYTHONPATH=gen /usr/bin/python3 grid_client.py --server 127.0.0.1:7070

(/usr/bin/python3: Debian's, where python3-grpcio is installed.)

Over TLS, use grpc.secure_channel with Grid's CA and send a token as the
metadata ("authorization", "Bearer grid_...") on each call (see docs/api.md).
"""
import argparse
import sys
import uuid

import grpc
from grid.v1 import job_pb2, job_pb2_grpc

STATE = job_pb2.JobState.Name
REASON = job_pb2.EndReason.Name

SCRIPT = b"""echo "hello from Grid"
echo "this goes to stderr" >&2
echo "bye"
exit 3
"""


def follow(jobs, job_id):
    """Prints a job's state changes and output until it ends; returns the ended job."""
    request = job_pb2.WatchJobRequest(job_id=job_id, include_logs=True)
    for event in jobs.WatchJob(request):
        kind = event.WhichOneof("event")
        if kind == "job":
            print(f"state {STATE(event.job.state)}")
        elif kind == "log":
            chunk = event.log
            name = "stdout" if chunk.stream == job_pb2.LOG_STREAM_STDOUT else "stderr"
            for line in chunk.data.decode(errors="replace").splitlines():
                print(f"{name}: {line}")
        elif kind == "ended":
            return event.ended
        # Other kinds (progress events, ones added later) are skipped, as the API asks.
    raise RuntimeError("the stream closed before the job ended")


def run_script(jobs):
    spec = job_pb2.JobSpec(script=job_pb2.Script(name="hello.sh", content=SCRIPT))
    request = job_pb2.SubmitJobRequest(spec=spec, request_id=str(uuid.uuid4()))
    job = jobs.SubmitJob(request).job
    again = jobs.SubmitJob(request).job
    print(f"submitted {job.id}; the same request again gives {'the same job' if again.id == job.id else 'ANOTHER JOB'}")
    ended = follow(jobs, job.id)
    exit_code = ended.exit_code if ended.HasField("exit_code") else "none"
    print(f"ended {STATE(ended.state)}, reason {REASON(ended.end_reason)}, exit code {exit_code}")


def run_and_cancel(jobs):
    spec = job_pb2.JobSpec(command=["sleep", "60"])
    job = jobs.SubmitJob(job_pb2.SubmitJobRequest(spec=spec)).job
    for event in jobs.WatchJob(job_pb2.WatchJobRequest(job_id=job.id)):
        if event.WhichOneof("event") == "job" and event.job.state == job_pb2.JOB_STATE_RUNNING:
            break
    cancelled = jobs.CancelJob(job_pb2.CancelJobRequest(job_id=job.id, grace={"seconds": 0})).job
    print(f"cancel asked: {STATE(cancelled.state)}")
    ended = follow(jobs, job.id)
    print(f"ended {STATE(ended.state)}, reason {REASON(ended.end_reason)}")


def show_errors(jobs):
    try:
        jobs.GetJob(job_pb2.GetJobRequest(job_id=str(uuid.uuid4())))
    except grpc.RpcError as err:
        if err.code() != grpc.StatusCode.NOT_FOUND:
            raise
        print(f"NOT_FOUND: {err.details()}")
    try:
        bad = job_pb2.JobSpec(command=["true"], resources=job_pb2.Resources(cpus=-1))
        jobs.SubmitJob(job_pb2.SubmitJobRequest(spec=bad))
    except grpc.RpcError as err:
        if err.code() != grpc.StatusCode.INVALID_ARGUMENT:
            raise
        print(f"INVALID_ARGUMENT: {err.details()}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="127.0.0.1:7070", help="a control plane, host:port (plaintext)")
    args = parser.parse_args()
    with grpc.insecure_channel(args.server) as channel:
        jobs = job_pb2_grpc.JobServiceStub(channel)
        run_script(jobs)
        run_and_cancel(jobs)
        show_errors(jobs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
