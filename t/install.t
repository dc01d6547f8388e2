# Packaging and discovery: `make install DESTDIR=...` puts the module,
# the mtls-authz-rule tool, the man pages and (on a Debian-style layout)
# the a2enmod files where they belong; `a2enmod mtls_authz` enables the module and
# mod_ssl in a Debian-style configuration tree; `apachectl -M` and
# `httpd -M` list mtls_authz_module.
#
# Nothing outside t/logs/cfg/install/ is written: the install goes to a
# DESTDIR, a2enmod and apachectl work on a copy of the Debian layout
# (APACHE_CONFDIR, APACHE_STATE_DIRECTORY), and the .load file there
# points at the module under DESTDIR instead of the real path.
use strict;
use warnings FATAL => 'all';
use Apache::Test qw(-withtestmore);
use File::Path qw(make_path remove_tree);
use FindBin ();
use lib "$FindBin::RealBin/lib";
use HttpdRun qw(locate missing_prereqs slurp spew run_cmd describe_status);

my %at = locate(__FILE__);
my ($HTTPD, $TOP, $MODULE, $BASE, $CFG) = @at{qw(httpd top module base cfg)};
my $DIR  = "$CFG/install";
my $DEST = "$DIR/dest";
my ($APXS) = grep { $_ && -x } $ENV{APXS},
  map { ("$_/apxs2", "$_/apxs") } split /:/, $ENV{PATH};

my @missing = missing_prereqs(%at);
push @missing, 'no apxs' unless $APXS;
die "cannot run: @missing\n" if @missing;

remove_tree($DIR);
make_path($DIR) or die "$DIR: $!";

my $n = 0;
# Runs a command (time limit 120 s): (wait status, output).
sub run {
    my (@cmd) = @_;
    my $out = "$DIR/cmd" . ++$n . '.out';
    my ($st, $hung) = run_cmd(120, $out, @cmd);
    return ($st, slurp($out) . ($hung ? "\n[timed out]" : ''));
}

sub apxs_q {
    my ($st, $v) = run($APXS, '-q', $_[0]);
    die "apxs -q $_[0] failed: $v" if $st;
    chomp $v;
    return $v;
}
my $LIBEXEC = apxs_q('LIBEXECDIR');
my $SYSCONF = apxs_q('SYSCONFDIR');
my $debian  = -d "$SYSCONF/mods-available";
my $MODS    = "$DEST$SYSCONF/mods-available";

plan tests => 19;

# ---- make install DESTDIR=... ------------------------------------------------

my ($st, $out) = run('make', '-C', $TOP, '--no-print-directory', 'install',
                     "DESTDIR=$DEST", "APXS=$APXS");
is(describe_status($st), 'exit 0', 'make install DESTDIR=... succeeds')
  or diag($out);

my $so   = "$DEST$LIBEXEC/mod_mtls_authz.so";
my $tool = "$DEST/usr/local/bin/mtls-authz-rule";
ok(-f $so && slurp($so) eq slurp($MODULE),
   "the module is installed as $LIBEXEC/mod_mtls_authz.so (under DESTDIR)");
ok(-f $so && ((stat $so)[2] & 07777) == 0644, 'the module is mode 644');
ok(-x $tool && slurp($tool) eq slurp("$TOP/build/mtls-authz-rule"),
   'the tool is installed as /usr/local/bin/mtls-authz-rule (PREFIX=/usr/local)');
($st, $out) = run($tool, '--version');
ok($st == 0 && $out =~ /^mtls-authz-rule \d/, 'the installed tool runs')
  or diag($out);

# The man pages, beside the tool: man finds /usr/local/share/man through
# PATH's /usr/local/bin.
for (['man1/mtls-authz-rule.1', 'mtls-authz-rule.1'], ['man8/mod_mtls_authz.8', 'mod_mtls_authz.8']) {
    my ($rel, $src) = @$_;
    my $page = "$DEST/usr/local/share/man/$rel";
    ok(-f $page && ((stat $page)[2] & 07777) == 0644 && slurp($page) eq slurp("$TOP/man/$src"),
       "man/$src is installed as /usr/local/share/man/$rel, mode 644");
}

# The a2enmod files: on a Debian-style layout only.
my $load = slurp("$MODS/mtls_authz.load");
my $conf = slurp("$MODS/mtls_authz.conf");
if ($debian) {
    like($load, qr/\A# Depends: ssl\n/,
         "mods-available/mtls_authz.load starts with '# Depends: ssl' (a2enmod enables mod_ssl)");
    like($load, qr{^LoadModule mtls_authz_module \Q$LIBEXEC\E/mod_mtls_authz\.so$}m,
         "mtls_authz.load loads $LIBEXEC/mod_mtls_authz.so");
    my @active = grep { /\S/ && !/^\s*#/ } split /\n/, $conf;
    ok($conf ne '' && !@active,
       'mods-available/mtls_authz.conf is installed and all commented out')
      or diag("active lines: @active");
}
else {
    ok(!-e "$MODS/mtls_authz.load", "no $SYSCONF/mods-available: no .load installed") for 1 .. 3;
}

# An edited mtls_authz.conf survives a second install; MODS_AVAILABLE=
# installs no a2enmod files.
if ($debian) {
    spew("$MODS/mtls_authz.conf", "# edited\n");
    ($st, $out) = run('make', '-C', $TOP, '--no-print-directory', 'install',
                      "DESTDIR=$DEST", "APXS=$APXS");
    ok($st == 0 && slurp("$MODS/mtls_authz.conf") eq "# edited\n"
         && $out =~ /kept .*mtls_authz\.conf/,
       'a second make install keeps an edited mtls_authz.conf') or diag($out);
    spew("$MODS/mtls_authz.conf", $conf);
}
else {
    ok(1, 'a second make install: no mtls_authz.conf to keep (not Debian-style)');
}
($st, $out) = run('make', '-C', $TOP, '--no-print-directory', 'install',
                  "DESTDIR=$DIR/dest2", "APXS=$APXS", 'MODS_AVAILABLE=',
                  'PREFIX=/opt/mtls');
ok($st == 0 && -x "$DIR/dest2/opt/mtls/bin/mtls-authz-rule"
     && !-e "$DIR/dest2$SYSCONF",
   'PREFIX=/opt/mtls MODS_AVAILABLE= : tool in /opt/mtls/bin, no a2enmod files')
  or diag($out);
ok(-f "$DIR/dest2/opt/mtls/share/man/man1/mtls-authz-rule.1"
     && -f "$DIR/dest2/opt/mtls/share/man/man8/mod_mtls_authz.8",
   'PREFIX=/opt/mtls: the man pages in /opt/mtls/share/man/man1 and man8');

# ---- a2enmod and apachectl -M on a Debian-style tree -------------------------

SKIP: {
    my ($a2enmod) = grep { -x } '/usr/sbin/a2enmod';
    my ($ctl) = grep { -x } '/usr/sbin/apachectl', '/usr/sbin/apache2ctl';
    # Not on Debian: these checks do not apply; say so rather than pass.
    skip "not a Debian-style httpd ($SYSCONF/mods-available, a2enmod, apachectl)", 5
      unless $debian && $a2enmod && $ctl;

    my $c = "$DIR/etc/apache2";
    make_path("$c/mods-available", "$c/mods-enabled", "$DIR/run/socks",
              "$DIR/lock", "$DIR/log", "$DIR/state");
    opendir my $dh, "$SYSCONF/mods-available" or die "$SYSCONF/mods-available: $!";
    for my $f (grep { /\.(load|conf)$/ && !/^mtls_authz\./ } readdir $dh) {
        spew("$c/mods-available/$f", slurp("$SYSCONF/mods-available/$f"));
    }
    # The installed files, the .load pointing at the DESTDIR copy.
    (my $l = $load) =~ s{\Q$LIBEXEC\E/mod_mtls_authz\.so}{$so};
    spew("$c/mods-available/mtls_authz.load", $l);
    spew("$c/mods-available/mtls_authz.conf", $conf);
    my ($user, $group) = ((getpwuid $>)[0], (getgrgid $))[0]);
    spew("$c/envvars", join '', map { "export $_\n" }
         "APACHE_RUN_USER=$user", "APACHE_RUN_GROUP=$group",
         "APACHE_PID_FILE=$DIR/run/apache2.pid", "APACHE_RUN_DIR=$DIR/run",
         "APACHE_LOCK_DIR=$DIR/lock", "APACHE_LOG_DIR=$DIR/log", 'LANG=C');
    # The parts of Debian's apache2.conf that matter here.
    spew("$c/apache2.conf", <<"EOF");
DefaultRuntimeDir \${APACHE_RUN_DIR}
PidFile \${APACHE_PID_FILE}
ErrorLog \${APACHE_LOG_DIR}/error.log
LogLevel warn
ServerName localhost
IncludeOptional mods-enabled/*.load
IncludeOptional mods-enabled/*.conf
EOF
    # APACHE_HTTPD: apachectl runs the httpd the suite runs, which under
    # make test SANITIZE=1 or make valgrind is a wrapper around it.
    my @env = ('env', "APACHE_CONFDIR=$c", "APACHE_STATE_DIRECTORY=$DIR/state",
               "APACHE_HTTPD=$HTTPD");
    ($st, $out) = run(@env, $a2enmod, 'mpm_event', 'authz_core');
    is(describe_status($st), 'exit 0', 'a2enmod mpm_event authz_core') or diag($out);
    ($st, $out) = run(@env, $a2enmod, 'mtls_authz');
    ok($st == 0 && $out =~ /Enabling module mtls_authz\./,
       'a2enmod mtls_authz: exit 0, "Enabling module mtls_authz."') or diag($out);
    my @links = grep { !-l "$c/mods-enabled/$_" }
      qw(mtls_authz.load mtls_authz.conf ssl.load ssl.conf socache_shmcb.load);
    ok(!@links, 'mods-enabled has mtls_authz.load/.conf and, by the Depends line, ssl')
      or diag("missing: @links\n$out");
    ($st, $out) = run(@env, $ctl, '-M');
    ok($st == 0 && $out =~ /^ mtls_authz_module \(shared\)$/m
         && $out =~ /^ ssl_module \(shared\)$/m,
       "$ctl -M lists mtls_authz_module and ssl_module") or diag($out);
    ($st, $out) = run(@env, $ctl, '-t');
    like($out, qr/Syntax OK/, "$ctl -t: the enabled mtls_authz.conf is valid");
}

# ---- httpd -M with a plain LoadModule line (RHEL-style conf.modules.d) ------

my $f = "$DIR/plain.conf";
spew($f, join "\n", qq{ServerRoot "$DIR"}, qq{DefaultRuntimeDir "$DIR/run"},
     qq{PidFile "$DIR/run/plain.pid"}, qq{ErrorLog "$DIR/plain_error_log"},
     'ServerName localhost', 'Listen 127.0.0.1:9', qq{Include "$BASE"},
     qq{LoadModule mtls_authz_module "$so"}, '');
make_path("$DIR/run");
($st, $out) = run($HTTPD, '-M', '-f', $f);
ok($st == 0 && $out =~ /^ mtls_authz_module \(shared\)$/m,
   'httpd -M with a LoadModule line for the installed module lists it')
  or diag($out);
