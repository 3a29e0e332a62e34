#!/usr/bin/perl
# pushed-text.pl SCAN MAP REFS_FILE TIP... — everything a push makes leave, as text for one
# gitleaks scan, with a location per line. Run by pre-receive inside the mirror, objects still
# in quarantine. For every commit the push brings (reachable from a pushed tip, from no ref the
# mirror has): the raw commit object (headers and message), the name of every path it changes,
# and every line it adds — binary files included, as text (`git log -p --text`). For every
# pushed tip that is an annotated tag: each tag object down its chain (a tag on a commit the
# upstream already has brings nothing else new). And the pushed ref names themselves.
#
# SCAN line 1 is a header (so content sniffing never takes the file for binary); SCAN line
# n + 1 is described by MAP line n: kind, commit/object, path, line, where — tab-separated.
# The file is named neutrally, so no path rule of the scanner's config can skip it.
use strict;
use warnings;

my ($scan_file, $map_file, $refs_file, @tips) = @ARGV;
open(my $scan, '>:raw', $scan_file) or die "pushed-text: $scan_file: $!\n";
open(my $map, '>:raw', $map_file) or die "pushed-text: $map_file: $!\n";
print $scan "# git-gate: what this push sends upstream\n";

sub emit {
  my ($text, $kind, $object, $path, $line, $where) = @_;
  $text =~ s/[\r\n]+$//;
  $text =~ s/\n/ /g;
  $_ = defined $_ ? $_ : '' for ($object, $path, $line);
  s/[\t\n\r]/ /g for ($object, $path, $where);
  print $scan "$text\n";
  print $map join("\t", $kind, $object, $path, $line, $where), "\n";
}

sub git_lines {
  my @cmd = @_;
  open(my $fh, '-|:raw', 'git', @cmd) or die "pushed-text: git @cmd: $!\n";
  my @lines = <$fh>;
  close($fh) or die "pushed-text: git @cmd failed\n";
  return @lines;
}

sub short { substr($_[0], 0, 12) }

# Ref names (as pushed).
open(my $rf, '<:raw', $refs_file) or die "pushed-text: $refs_file: $!\n";
my $n = 0;
while (my $ref = <$rf>) {
  chomp $ref;
  next if $ref eq '';
  $n++;
  emit($ref, 'ref', '', '', $n, "the name of pushed ref #$n");
}
close $rf;

my @new = @tips ? git_lines('rev-list', @tips, '--not', '--all') : ();
chomp @new;

# Commit objects: headers (author, committer, ...) and message.
for my $c (@new) {
  my $in_message = 0;
  my $msgline = 0;
  my $i = 0;
  for my $l (git_lines('cat-file', 'commit', $c)) {
    $i++;
    if (!$in_message && $l eq "\n") { $in_message = 1; next }
    if ($in_message) { $msgline++; emit($l, 'commit', $c, '', $msgline, 'commit ' . short($c) . " message, line $msgline") }
    else { emit($l, 'commit', $c, '', $i, 'commit ' . short($c) . " header, line $i") }
  }
}

if (@new) {
  # Names of every path the new commits change (a merge: against its first parent).
  my $commit = '';
  for my $l (git_lines('log', '--format=%x01%H', '--name-only', '--no-renames', '--diff-merges=first-parent', @tips, '--not', '--all')) {
    chomp $l;
    if ($l =~ /^\x01([0-9a-f]+)$/) { $commit = $1; next }
    next if $l eq '';
    emit($l, 'path', $commit, $l, '', 'a file name changed by commit ' . short($commit));
  }
  # Every added line, binary files as text, with its line number in the new file.
  $commit = '';
  my ($path, $new_line, $left_old, $left_new) = ('', 0, 0, 0);
  open(my $log, '-|:raw', 'git', 'log', '-p', '--text', '-U0', '--no-renames', '--no-color', '--no-ext-diff', '--no-textconv',
    '--diff-merges=first-parent', '--format=%x01%H', @tips, '--not', '--all') or die "pushed-text: git log: $!\n";
  while (my $l = <$log>) {
    if ($left_old > 0 || $left_new > 0) {
      my $c = substr($l, 0, 1);
      if ($c eq '+') {
        $left_new--;
        emit(substr($l, 1), 'add', $commit, $path, $new_line, "$path:$new_line (commit " . short($commit) . ')');
        $new_line++;
        next;
      }
      if ($c eq '-') { $left_old--; next }
      next if $c eq '\\';    # "\ No newline at end of file"
      ($left_old, $left_new) = (0, 0);
    }
    if ($l =~ /^\x01([0-9a-f]+)$/) { $commit = $1; next }
    if ($l =~ /^\+\+\+ (?:b\/(.*)|\/dev\/null)$/) { $path = defined $1 ? $1 : ''; next }
    if ($l =~ /^@@ -\d+(?:,(\d+))? \+(\d+)(?:,(\d+))? @@/) {
      ($left_old, $new_line, $left_new) = (defined $1 ? $1 : 1, $2, defined $3 ? $3 : 1);
      next;
    }
    next if $l =~ /^\\/;
  }
  close($log) or die "pushed-text: git log -p failed\n";
}

# Annotated tags among the pushed tips, each tag object down the chain.
my %seen;
for my $tip (@tips) {
  my $obj = $tip;
  while (!$seen{$obj}++) {
    my ($type) = git_lines('cat-file', '-t', $obj);
    chomp $type;
    last unless $type eq 'tag';
    my ($next, $in_message, $msgline, $i) = ('', 0, 0, 0);
    for my $l (git_lines('cat-file', 'tag', $obj)) {
      $i++;
      $next = $1 if !$in_message && $l =~ /^object ([0-9a-f]+)$/;
      if (!$in_message && $l eq "\n") { $in_message = 1; next }
      if ($in_message) { $msgline++; emit($l, 'tag', $obj, '', $msgline, 'annotated tag ' . short($obj) . " message, line $msgline") }
      else { emit($l, 'tag', $obj, '', $i, 'annotated tag ' . short($obj) . " header, line $i") }
    }
    last unless $next;
    $obj = $next;
  }
}
close $scan or die;
close $map or die;
