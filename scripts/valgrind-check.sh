#!/bin/sh
# Reads the memcheck logs that `make valgrind` leaves in DIR (one per
# httpd process) and fails on:
#   - any invalid read, write or free, anywhere;
#   - a use of uninitialised memory or a definite leak whose stack has a
#     frame in mod_mtls_authz (httpd's, APR's and OpenSSL's own are
#     counted and shown, not judged here).
# usage: valgrind-check.sh DIR
set -eu
dir=${1:?usage: valgrind-check.sh DIR}

exec perl -e '
use strict;
use warnings;
my $dir = shift;
my @logs = sort glob "$dir/vg.*";
my (%count, @bad);
my $killed = 0;
for my $log (@logs) {
    open my $fh, "<", $log or die "$log: $!";
    my $summary = 0;
    my @block;
    my $flush = sub {
        return unless @block;
        my $text  = join "", @block;
        my $first = $block[0];
        @block = ();
        my $ours = $text =~ /mod_mtls_authz|mtls_\w+\.c/;
        my $kind;
        if ($first =~ /(Invalid (?:read|write|free)|Mismatched free)/) {
            $kind = "invalid";
        } elsif ($first =~ /uninitialised/) {
            $kind = "uninitialised";
        } elsif ($first =~ /definitely lost in loss record/) {
            $kind = "definite leak";
        } else {
            return;
        }
        my $key = $kind . ($ours ? " (mod_mtls_authz)" : " (elsewhere)");
        $count{$key}++;
        push @bad, "$log:\n$text" if $kind eq "invalid" || $ours;
    };
    while (my $line = <$fh>) {
        next unless $line =~ /^==\d+== ?(.*)$/s;
        my $msg = $1;
        $summary = 1 if $msg =~ /^ERROR SUMMARY:/;
        if ($msg =~ /^\s*$/) { $flush->(); next; }
        push @block, $line;
    }
    $flush->();
    $killed++ unless $summary;
}
die "valgrind: no logs in $dir\n" unless @logs;
my $summary = join ", ", map { "$count{$_} $_" } sort keys %count;
print "valgrind: ", scalar(@logs), " httpd processes checked; ",
  ($summary || "no errors and no definite leaks"),
  ($killed ? " ($killed of them killed before valgrind could summarise; their errors so far are counted)" : ""),
  "\n";
if (@bad) {
    print "---- $_\n" for @bad[0 .. ($#bad < 9 ? $#bad : 9)];
    print "valgrind: FAILED: ", scalar(@bad), " findings above\n";
    exit 1;
}
print "valgrind: ok: no invalid access anywhere, no uninitialised use or definite leak from mod_mtls_authz\n";
' "$dir"
