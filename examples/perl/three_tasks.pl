#!/usr/bin/env perl
# three_tasks.pl: libapixo from Perl through FFI::Platypus (Debian: libffi-platypus-perl).
#
# Queue delivery mode: no Perl code ever runs on a library thread (a Platypus closure called
# from the dispatcher thread crashes the interpreter). Three tasks through apixo_submit_async
# with no callback and user_data = the task's index (an opaque 0 is NULL, which comes back
# as undef); the main thread waits for the client's event descriptor with
# IO::Select and takes the completions with apixo_next_event. One line per task.
#
#   APIXO_LIBRARY=/path/to/libapixo.so APIXO_API_KEY=sk-... perl three_tasks.pl
use strict;
use warnings;
use FFI::Platypus 2.00;
use IO::Select;
use Time::HiRes qw(clock_gettime CLOCK_MONOTONIC);

use constant { OK => 0, ERR_TIMEOUT => 10, DELIVERY_QUEUE => 1, EVENT_COMPLETION => 0, N => 3 };

my $ffi = FFI::Platypus->new(api => 2, lib => [$ENV{APIXO_LIBRARY} // 'libapixo.so']);
# Handles are opaque pointers (integers to Perl); apixo_code and the enums are C ints.
$ffi->attach(@$_) for (
  [apixo_code_name              => ['int']                                => 'string'],
  [apixo_last_error             => []                                     => 'string'],
  [apixo_state_name             => ['int']                                => 'string'],
  [apixo_options_new            => []                                     => 'opaque'],
  [apixo_options_free           => ['opaque']                             => 'void'],
  [apixo_options_set_time_scale => ['opaque', 'double']                   => 'int'],
  [apixo_options_set_delivery   => ['opaque', 'int']                      => 'int'],
  [apixo_client_new             => ['opaque', 'opaque*']                  => 'int'],
  [apixo_client_free            => ['opaque']                             => 'void'],
  [apixo_client_event_fd        => ['opaque', 'int*']                     => 'int'],
  [apixo_request_new            => ['string']                             => 'opaque'],
  [apixo_request_free           => ['opaque']                             => 'void'],
  [apixo_request_set_prompt     => ['opaque', 'string']                   => 'int'],
  [apixo_request_set_max_images => ['opaque', 'int']                      => 'int'],
  [apixo_submit_async           => ['opaque', 'opaque', 'opaque', 'opaque'] => 'int'],
  [apixo_next_event             => ['opaque', 'long', 'opaque*']          => 'int'],
  [apixo_event_kind_of          => ['opaque']                             => 'int'],
  [apixo_event_code             => ['opaque']                             => 'int'],
  [apixo_event_task             => ['opaque']                             => 'opaque'],
  [apixo_event_user_data        => ['opaque']                             => 'opaque'],
  [apixo_event_message          => ['opaque']                             => 'string'],
  [apixo_event_free             => ['opaque']                             => 'void'],
  [apixo_task_id                => ['opaque']                             => 'string'],
  [apixo_task_state             => ['opaque']                             => 'int'],
  [apixo_task_result_count      => ['opaque']                             => 'size_t'],
);

# Dies with the code's name and apixo_last_error, read right after the failing call.
sub check {
  my ($rc, $what) = @_;
  die sprintf("%s: %s: %s\n", $what, apixo_code_name($rc), apixo_last_error()) if $rc != OK;
}

sub run {
  my $opts = apixo_options_new() or die "out of memory\n";
  my $client;
  eval {
    check(apixo_options_set_time_scale($opts, $ENV{APIXO_TIME_SCALE}), 'time scale')
      if defined $ENV{APIXO_TIME_SCALE};
    check(apixo_options_set_delivery($opts, DELIVERY_QUEUE), 'delivery');
    check(apixo_client_new($opts, \$client), 'client');
    1;
  } or do { my $e = $@; apixo_options_free($opts); die $e };
  apixo_options_free($opts);

  my @results;
  my $received = 0;
  my $req = apixo_request_new(undef);
  my $ok = eval {
    my $fd;
    check(apixo_client_event_fd($client, \$fd), 'event fd');
    # IO::Select takes the descriptor number itself: no Perl handle that could close it.
    my $select = IO::Select->new($fd);

    check(apixo_request_set_prompt($req, 'a lighthouse in a storm, oil painting'), 'prompt');
    check(apixo_request_set_max_images($req, 1), 'max_images');
    for my $i (0 .. N - 1) {
      # no callback (queue mode): the completion comes back through apixo_next_event
      check(apixo_submit_async($client, $req, undef, $i), 'submit');
    }

    my $deadline = clock_gettime(CLOCK_MONOTONIC) + 120;
    while ($received < N) {
      my $left = $deadline - clock_gettime(CLOCK_MONOTONIC);
      die sprintf("timed out after %d of %d completions\n", $received, N) if $left <= 0;
      next unless $select->can_read($left < 1 ? $left : 1);
      my ($ev, $rc);
      while (($rc = apixo_next_event($client, 0, \$ev)) == OK) {
        if (apixo_event_kind_of($ev) == EVENT_COMPLETION) {
          my $index = apixo_event_user_data($ev) // 0;
          my %o = (code => apixo_event_code($ev), message => apixo_event_message($ev));
          my $task = apixo_event_task($ev);    # borrowed from the event: copy what is kept
          if (defined $task) {
            $o{id} = apixo_task_id($task);
            $o{state} = apixo_state_name(apixo_task_state($task));
            $o{urls} = apixo_task_result_count($task);
          }
          if ($index >= 0 && $index < N) {
            $received++ unless $results[$index];
            $results[$index] = \%o;
          }
        }
        apixo_event_free($ev);
      }
      check($rc, 'next event') unless $rc == ERR_TIMEOUT;
    }
    1;
  };
  my $err = $@;
  apixo_request_free($req);
  apixo_client_free($client);
  die $err unless $ok;

  my $failures = 0;
  for my $i (0 .. N - 1) {
    my $o = $results[$i];
    if ($o->{code} != OK) {
      printf STDERR "task %d: %s: %s\n", $i, apixo_code_name($o->{code}), $o->{message};
      $failures++;
      next;
    }
    printf "task %d id=%s state=%s urls=%d\n", $i, $o->{id}, $o->{state}, $o->{urls};
  }
  printf "completed %d/%d\n", N - $failures, N;
  return $failures == 0 ? 0 : 1;
}

$| = 1;
my $status = eval { run() };
if (!defined $status) {
  print STDERR "three_tasks: $@";
  exit 1;
}
exit $status;
