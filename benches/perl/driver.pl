#!/usr/bin/perl
# The Perl original, Cache::FastMmap, running the benches crate's workloads in Perl's own
# loop (started by the `compare` runner; see benches/src/perl.rs). It pays Perl's call
# overhead, so its numbers are reported apart from the Rust engines.
#
# usage: driver.pl DIR SAMPLES SAMPLE_MS WARMUP_MS WORKLOAD...
# prints one line per workload: NAME <TAB> OPS_PER_SAMPLE <TAB> ns,ns,... <TAB> UNEXPECTED
#                            or NAME <TAB> skip <TAB> reason
use strict;
use warnings;
use Cache::FastMmap;
use Time::HiRes qw(clock_gettime CLOCK_MONOTONIC);

my ($dir, $samples, $sample_ms, $warmup_ms, @workloads) = @ARGV;
die "usage: driver.pl DIR SAMPLES SAMPLE_MS WARMUP_MS WORKLOAD...\n" unless @workloads;
$| = 1;
my $HOT = 1000;

# 48-byte session keys like the Rust side's: "session:" and 40 hex digits.
sub keys_for {
    my ($tag, $n) = @_;
    return [ map { sprintf("session:%08x%032x", unpack("N", pack("N", $_)), $_ * 2654435761 + length($tag) * 7919) } 0 .. $n - 1 ];
}

sub open_cache {
    my ($name, $entries, $value_len) = @_;
    my $bytes = $entries * ($value_len + 48 + 64) * 2;
    $bytes = 32 << 20 if $bytes < (32 << 20);
    return Cache::FastMmap->new(
        share_file  => "$dir/$name.fmm",
        init_file   => 1,
        raw_values  => 1,
        serializer  => '',
        cache_size  => $bytes,
        expire_time => '1h',
        unlink_on_exit => 1,
    );
}

sub now_ns { return clock_gettime(CLOCK_MONOTONIC) * 1e9 }

# Runs $op->($i) (returns true when the result is the expected one) as the Rust harness
# does: a warm-up that sizes the batch, then $samples timed batches.
sub measure {
    my ($op) = @_;
    my ($i, $warm, $start) = (0, 0, now_ns());
    while ($warm < 3 || now_ns() - $start < $warmup_ms * 1e6) { $op->($i++); $warm++ }
    my $per_op = (now_ns() - $start) / $warm;
    my $batch = int($sample_ms * 1e6 / ($per_op > 1 ? $per_op : 1)) || 1;
    my ($unexpected, @ns) = (0);
    for (1 .. $samples) {
        my $t = now_ns();
        for (1 .. $batch) { $unexpected++ unless $op->($i++) }
        push @ns, (now_ns() - $t) / $batch;
    }
    return ($batch, \@ns, $unexpected);
}

for my $w (@workloads) {
    my ($batch, $ns, $unexpected);
    if ($w =~ /^(get_hit|get_new|get_miss|put)_(\d+|4k)$/ or $w =~ /^(get_at)_(\d+)([km]?)$/ or $w eq 'update_counter' or $w eq 'mix_90_10') {
        my ($kind, $size, $mult) = ($1 // $w, $2, $3);
        my $value_len = ($kind eq 'get_at' || !defined $size) ? 100 : ($size eq '4k' ? 4096 : $size);
        my $n = $kind eq 'get_at' ? $size * ($mult eq 'm' ? 1_000_000 : $mult eq 'k' ? 1000 : 1) : $HOT;
        my $c = open_cache($w, $n, $value_len);
        my $keys = keys_for("$w/live", $n);
        my $value = join '', map { chr($_ % 251) } 0 .. $value_len - 1;
        if ($w eq 'update_counter') { $c->set($_, 0) for @$keys } else { $c->set($_, $value) for @$keys }
        my $miss = keys_for("$w/absent", $HOT);
        my %ops = (
            get_hit  => sub { defined $c->get($keys->[int(rand($n))]) },
            # Perl's get always returns a new scalar: the same operation.
            get_new  => sub { defined $c->get($keys->[int(rand($n))]) },
            get_at   => sub { defined $c->get($keys->[int(rand($n))]) },
            get_miss => sub { !defined $c->get($miss->[int(rand($HOT))]) },
            put      => sub { $c->set($keys->[int(rand($n))], $value) },
            update_counter => sub { my $v = $c->get_and_set($keys->[int(rand($n))], sub { ($_[1] // 0) + 1 }); $v > 0 },
            mix_90_10 => sub {
                my $k = $keys->[int(rand($n))];
                rand(10) < 1 ? $c->set($k, $value) : defined $c->get($k);
            },
        );
        ($batch, $ns, $unexpected) = measure($ops{$kind});
    } elsif ($w =~ /^purge_(\d+)([km]?)$/) {
        my $n = $1 * ($2 eq 'm' ? 1_000_000 : $2 eq 'k' ? 1000 : 1);
        my $expired = int($n / 10);
        my $c = open_cache($w, $n, 100);
        my $value = 'x' x 100;
        $c->set($_, $value) for @{ keys_for("$w/live", $n - $expired) };
        my $old = keys_for("$w/expired", $expired);
        my @ns;
        for (1 .. $samples) {
            $c->set($_, $value, { expire_on => 1 }) for @$old;
            my $t = now_ns();
            $c->purge;
            push @ns, now_ns() - $t;
        }
        ($batch, $ns, $unexpected) = (1, \@ns, 0);
    } else {
        print "$w\tskip\tCache::FastMmap has no such operation (or the driver does not run it)\n";
        next;
    }
    printf "%s\t%d\t%s\t%d\n", $w, $batch, join(',', map { sprintf '%.1f', $_ } @$ns), $unexpected;
}
