#!/usr/bin/env ruby
# frozen_string_literal: true

# A small Grid client in Ruby (Debian's ruby-grpc), from stubs generated from
# proto/ (generate.sh): it submits a script job, follows its output to the end
# with stdout and stderr apart, prints how it ended, cancels a running job, and
# handles NOT_FOUND and INVALID_ARGUMENT.
#
#   ./generate.sh gen && ruby -I gen grid_client.rb 127.0.0.1:7070
require 'securerandom'
require 'grpc'
require 'grid/v1/job_services_pb'

V1 = Grid::V1
server = ARGV.fetch(0, '127.0.0.1:7070')
jobs = V1::JobService::Stub.new(server, :this_channel_is_insecure)

# Prints a job's output until it ends; returns the ended job.
def follow(jobs, job_id)
  jobs.watch_job(V1::WatchJobRequest.new(job_id: job_id, include_logs: true)).each do |event|
    case event.event
    when :log
      name = event.log.stream == :LOG_STREAM_STDOUT ? 'stdout' : 'stderr'
      event.log.data.each_line { |line| puts "#{name}: #{line.chomp}" }
    when :ended
      return event.ended
    end
    # `job` events (state changes), progress and kinds added later: skipped here.
  end
  raise 'the stream closed before the job ended'
end

script = V1::Script.new(name: 'hello.sh', content: "echo \"hello from Grid\"\necho oops >&2\nexit 3\n")
request = V1::SubmitJobRequest.new(spec: V1::JobSpec.new(script: script), request_id: SecureRandom.uuid)
job = jobs.submit_job(request).job
same = jobs.submit_job(request).job.id == job.id
puts "submitted #{job.id}; the same request again gives #{same ? 'the same job' : 'ANOTHER JOB'}"
ended = follow(jobs, job.id)
puts "ended #{ended.state}, reason #{ended.end_reason}, exit code #{ended.has_exit_code? ? ended.exit_code : 'none'}"

long = jobs.submit_job(V1::SubmitJobRequest.new(spec: V1::JobSpec.new(command: %w[sleep 60]))).job
jobs.watch_job(V1::WatchJobRequest.new(job_id: long.id)).each do |event|
  break if event.event == :job && event.job.state == :JOB_STATE_RUNNING
end
cancelled = jobs.cancel_job(V1::CancelJobRequest.new(job_id: long.id, grace: Google::Protobuf::Duration.new(seconds: 0))).job
puts "cancel asked: #{cancelled.state}"
ended = follow(jobs, long.id)
puts "ended #{ended.state}, reason #{ended.end_reason}"

begin
  jobs.get_job(V1::GetJobRequest.new(job_id: SecureRandom.uuid))
rescue GRPC::NotFound => e
  puts "NOT_FOUND: #{e.details}"
end
begin
  bad = V1::JobSpec.new(command: ['true'], resources: V1::Resources.new(cpus: -1))
  jobs.submit_job(V1::SubmitJobRequest.new(spec: bad))
rescue GRPC::InvalidArgument => e
  puts "INVALID_ARGUMENT: #{e.details}"
end
