#!/usr/bin/env ruby
# three_tasks.rb: libapixo from Ruby through Fiddle (standard library, no gem).
#
# Queue delivery mode: no Ruby code ever runs on a library thread (a Fiddle closure called
# from the dispatcher thread kills the interpreter: "rb_thread_call_with_gvl() is called by
# non-ruby thread"). Three tasks through apixo_submit_async with no callback and user_data =
# the task's index; the main thread waits for the client's event descriptor with
# IO#wait_readable (other Ruby threads keep running meanwhile) and takes the completions with
# apixo_next_event. One line per task.
#
#   APIXO_LIBRARY=/path/to/libapixo.so APIXO_API_KEY=sk-... ruby three_tasks.rb
require 'fiddle'
require 'fiddle/import'
require 'io/wait'

module Apixo
  extend Fiddle::Importer
  dlload ENV.fetch('APIXO_LIBRARY', 'libapixo.so')

  OK = 0
  ERR_TIMEOUT = 10
  DELIVERY_QUEUE = 1
  EVENT_COMPLETION = 0

  # apixo_code and the other enums are C ints; handles are opaque pointers.
  extern 'const char *apixo_code_name(int)'
  extern 'const char *apixo_last_error()'
  extern 'const char *apixo_state_name(int)'
  extern 'void *apixo_options_new()'
  extern 'void apixo_options_free(void *)'
  extern 'int apixo_options_set_time_scale(void *, double)'
  extern 'int apixo_options_set_delivery(void *, int)'
  extern 'int apixo_client_new(void *, void *)'
  extern 'void apixo_client_free(void *)'
  extern 'int apixo_client_event_fd(void *, void *)'
  extern 'void *apixo_request_new(const char *)'
  extern 'void apixo_request_free(void *)'
  extern 'int apixo_request_set_prompt(void *, const char *)'
  extern 'int apixo_request_set_max_images(void *, int)'
  extern 'int apixo_submit_async(void *, void *, void *, void *)'
  extern 'int apixo_next_event(void *, long, void *)'
  extern 'int apixo_event_kind_of(void *)'
  extern 'int apixo_event_code(void *)'
  extern 'void *apixo_event_task(void *)'
  extern 'void *apixo_event_user_data(void *)'
  extern 'const char *apixo_event_message(void *)'
  extern 'void apixo_event_free(void *)'
  extern 'const char *apixo_task_id(void *)'
  extern 'int apixo_task_state(void *)'
  extern 'size_t apixo_task_result_count(void *)'

  class Error < StandardError; end

  # Raises with the code's name and apixo_last_error, read right after the failing call (same
  # thread: Fiddle calls run on the calling Ruby thread).
  def self.check(rc, what)
    return if rc == OK
    raise Error, "#{what}: #{apixo_code_name(rc)}: #{apixo_last_error.to_s}"
  end
end

N = 3

def pointer_slot
  Fiddle::Pointer.malloc(Fiddle::SIZEOF_VOIDP, Fiddle::RUBY_FREE)
end

def read_pointer(slot)
  Fiddle::Pointer.new(slot[0, Fiddle::SIZEOF_VOIDP].unpack1('J'))
end

def main
  opts = Apixo.apixo_options_new
  raise NoMemoryError if opts.null?
  client = nil
  begin
    scale = ENV['APIXO_TIME_SCALE']
    Apixo.check(Apixo.apixo_options_set_time_scale(opts, Float(scale)), 'time scale') if scale
    Apixo.check(Apixo.apixo_options_set_delivery(opts, Apixo::DELIVERY_QUEUE), 'delivery')
    slot = pointer_slot
    Apixo.check(Apixo.apixo_client_new(opts, slot), 'client')
    client = read_pointer(slot)
  ensure
    Apixo.apixo_options_free(opts)
  end

  results = Array.new(N)
  req = Apixo.apixo_request_new(nil)
  begin
    fd_slot = Fiddle::Pointer.malloc(Fiddle::SIZEOF_INT, Fiddle::RUBY_FREE)
    Apixo.check(Apixo.apixo_client_event_fd(client, fd_slot), 'event fd')
    # The descriptor belongs to the client: never close it (autoclose: false).
    events = IO.for_fd(fd_slot[0, Fiddle::SIZEOF_INT].unpack1('i'), autoclose: false)

    Apixo.check(Apixo.apixo_request_set_prompt(req, 'a lighthouse in a storm, oil painting'), 'prompt')
    Apixo.check(Apixo.apixo_request_set_max_images(req, 1), 'max_images')
    N.times do |i|
      # no callback (queue mode): the completion comes back through apixo_next_event
      Apixo.check(Apixo.apixo_submit_async(client, req, nil, i), 'submit')
    end

    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 120
    ev_slot = pointer_slot
    while results.compact.size < N
      left = deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC)
      raise Apixo::Error, "timed out after #{results.compact.size} of #{N} completions" if left <= 0
      next unless events.wait_readable([left, 1.0].min)

      while (rc = Apixo.apixo_next_event(client, 0, ev_slot)) == Apixo::OK
        ev = read_pointer(ev_slot)
        begin
          next unless Apixo.apixo_event_kind_of(ev) == Apixo::EVENT_COMPLETION

          index = Apixo.apixo_event_user_data(ev).to_i
          code = Apixo.apixo_event_code(ev)
          task = Apixo.apixo_event_task(ev) # borrowed from the event: copy what is kept
          o = { code: code, message: Apixo.apixo_event_message(ev).to_s }
          unless task.null?
            o[:id] = Apixo.apixo_task_id(task).to_s
            o[:state] = Apixo.apixo_state_name(Apixo.apixo_task_state(task)).to_s
            o[:urls] = Apixo.apixo_task_result_count(task)
          end
          results[index] = o
        ensure
          Apixo.apixo_event_free(ev)
        end
      end
      Apixo.check(rc, 'next event') unless rc == Apixo::ERR_TIMEOUT
    end
  ensure
    Apixo.apixo_request_free(req)
    Apixo.apixo_client_free(client)
  end

  failures = 0
  results.each_with_index do |o, i|
    if o[:code] != Apixo::OK
      warn "task #{i}: #{Apixo.apixo_code_name(o[:code]).to_s}: #{o[:message]}"
      failures += 1
      next
    end
    puts "task #{i} id=#{o[:id]} state=#{o[:state]} urls=#{o[:urls]}"
  end
  puts "completed #{N - failures}/#{N}"
  failures.zero? ? 0 : 1
end

begin
  exit main
rescue StandardError, NoMemoryError => e
  warn "three_tasks: #{e.message}"
  exit 1
end
