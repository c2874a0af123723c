/**
 * Attacks on the host's kernel from inside a sandbox: global settings, capabilities, new
 * namespaces, mounts, ptrace, the daemon's keyring, files outside the workspace. Each runs as
 * the model's bash call at every isolation level, with the daemon as root and as a user.
 * A host setting an attack managed to change is put back.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { securityMatrix, startSecurityRig, type SecurityRig } from './support/rig.js';

const matrix = await securityMatrix();

/** Host settings the attacks try to change: [file, value an attack writes]. */
const SETTINGS: Array<[string, string]> = [
  ['/proc/sys/vm/swappiness', '61'],
  ['/proc/sys/kernel/core_pattern', '|/tmp/agentd-escape %p'],
  ['/proc/irq/default_smp_affinity', '1'],
  ['/sys/kernel/mm/transparent_hugepage/enabled', 'never'],
].filter(([file]) => existsSync(file)) as Array<[string, string]>;

const NR = process.arch === 'arm64' ? { ptrace: 117, keyctl: 219, addKey: 217, unshare: 97, mount: 40, socket: 198 } : { ptrace: 101, keyctl: 250, addKey: 248, unshare: 272, mount: 165, socket: 41 };
const perl = (code: string) => `perl -e '${code}'`;

for (const { principal, level, pool, where } of matrix) {
  describe(`the host's kernel stays out of reach (${where})`, () => {
    const keySecret = `keyring-secret-${randomBytes(8).toString('hex')}`;
    const escapes = [`/etc/agentd-escape-${randomBytes(4).toString('hex')}`, `/usr/agentd-escape-${randomBytes(4).toString('hex')}`];
    const saved = new Map(SETTINGS.map(([file]) => [file, readFileSync(file, 'utf8')]));
    const passwd = readFileSync('/etc/passwd', 'utf8');
    let rig: SecurityRig;
    let sessionId: string;
    let keyId = '';

    before(async () => {
      // The daemon starts with a key in its session keyring, which sandboxes would inherit.
      const plant = `syscall(${NR.keyctl}, 1, 0) >= 0 or die "join: $!"; my ($t, $d, $v) = ("user", "agentd-test-key", "${keySecret}"); my $id = syscall(${NR.addKey}, $t, $d, $v, length $v, -3); $id > 0 or die "add_key: $!"; print STDERR "planted key $id\\n"; exec @ARGV or die "exec: $!"`;
      rig = await startSecurityRig(principal, level, { pool, prefix: ['perl', '-e', plant, '--'] });
      keyId = /planted key (\d+)/.exec(rig.daemon.stderr())?.[1] ?? '';
      assert.ok(keyId, `the key was planted: ${rig.daemon.stderr()}`);
      sessionId = await rig.session({ workspace: rig.dir('kernel') });
    });
    after(async () => {
      // A selection file (`always [madvise] never`) is set by writing the selected word.
      for (const [file, value] of [...saved, ['/etc/passwd', passwd] as const]) if (readFileSync(file, 'utf8') !== value) writeFileSync(file, /\[(\w+)\]/.exec(value)?.[1] ?? value);
      for (const file of escapes) rmSync(file, { force: true });
      await rig.dispose();
    });

    it('cannot change global kernel settings (/proc/sys, irq affinity, /sys)', async () => {
      const r = await rig.bash(sessionId, SETTINGS.map(([file, value]) => `echo '${value}' > ${file}`).join('; ') + '; echo h > /proc/sysrq-trigger; echo end');
      for (const [file, value] of saved) assert.equal(readFileSync(file, 'utf8'), value, `${file} is unchanged`);
      assert.match(r.text, /(Read-only file system|No such file or directory|Permission denied)/);
      assert.match(r.text, /end\n\[exit code: 0\]$/);
    });

    it('runs as an unprivileged uid with no capabilities in any set and no_new_privs', async () => {
      const r = await rig.bash(sessionId, 'id -u; grep -E "^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):" /proc/self/status');
      const uid = Number(r.text.split('\n')[0]);
      assert.notEqual(uid, 0);
      for (const set of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) assert.match(r.text, new RegExp(`${set}:\\s+0{16}\\n`), `${set} is empty`);
      assert.match(r.text, /NoNewPrivs:\s+1/);
      if (level === 'bwrap') assert.match(r.text, /Seccomp:\s+2/, 'the seccomp filter is on');
    });

    it('cannot create a user namespace', async () => {
      const r = await rig.bash(sessionId, `unshare -U true && echo MADE-ONE; unshare -r id && echo MADE-ROOT; ${perl(`print syscall(${NR.unshare}, 0x10000000) == 0 ? "SYSCALL-MADE-ONE\\n" : "refused: $!\\n"`)}`);
      assert.doesNotMatch(r.text, /MADE-ONE|MADE-ROOT/);
      assert.match(r.text, /refused: (Operation not permitted|No space left on device)/);
    });

    it('cannot mount anything', async () => {
      const r = await rig.bash(sessionId, `mkdir -p m; mount -t tmpfs none m && echo MOUNTED; mount --bind / m && echo BOUND; ${perl(`my ($s,$t,$f) = ("none","m","tmpfs"); print syscall(${NR.mount}, $s, $t, $f, 0, 0) == 0 ? "SYSCALL-MOUNTED\\n" : "refused: $!\\n"`)}`);
      assert.doesNotMatch(r.text, /MOUNTED|BOUND/);
      assert.match(r.text, /refused: Operation not permitted/);
    });

    it('cannot ptrace the daemon (nor, under the seccomp filter, anything at all)', async () => {
      const daemon = rig.daemon.proc.pid!;
      // Without the filter (namespaces) the sandbox's own processes can trace each other; not tried there.
      const targets = level === 'bwrap' ? `${daemon}, 1, getppid()` : `${daemon}`;
      const r = await rig.bash(sessionId, `${perl(`for my $pid (${targets}) { my $r = syscall(${NR.ptrace}, 16, $pid, 0, 0); print "$pid: ", ($r == 0 ? "ATTACHED" : "refused: $!"), "\\n" }`)}`);
      assert.match(r.text, new RegExp(`${daemon}: refused: (No such process|Operation not permitted)`));
      if (level === 'bwrap') assert.doesNotMatch(r.text, /ATTACHED/);
    });

    it("cannot read the daemon's keyring", async () => {
      const r = await rig.bash(
        sessionId,
        perl(`my $buf = "\\0" x 256; my $n = syscall(${NR.keyctl}, 11, ${keyId}, $buf, 256); print $n > 0 ? "READ: " . substr($buf, 0, $n) . "\\n" : "read refused: $!\\n"; ` +
          `my ($t, $d) = ("user", "agentd-test-key"); my $id = syscall(${NR.keyctl}, 10, -3, $t, $d, 0); print $id > 0 ? "FOUND $id\\n" : "search refused: $!\\n"`) + '; cat /proc/keys',
      );
      assert.doesNotMatch(r.text, new RegExp(keySecret));
      assert.doesNotMatch(r.text, /READ:|FOUND|agentd-test-key/);
      assert.match(r.text, /read refused: /);
    });

    it('cannot write outside the workspace (system dirs, /etc/passwd)', async () => {
      const r = await rig.bash(sessionId, `echo x > ${escapes[0]}; echo x > ${escapes[1]}; echo 'evil:x:0:0::/:/bin/sh' >> /etc/passwd; echo end`);
      for (const file of escapes) assert.equal(existsSync(file), false, `${file} was not created`);
      assert.equal(readFileSync('/etc/passwd', 'utf8'), passwd);
      assert.match(r.text, /end\n\[exit code: 0\]$/);
    });

    if (level === 'bwrap') {
      it('cannot make a setuid or setgid file, which would run as the daemon\'s uid outside', async () => {
        const r = await rig.bash(
          sessionId,
          `cp /bin/true suid; chmod 4755 suid; chmod g+s suid; install -m 4755 /bin/true suid2; ${perl('open(my $f, ">", "plain") or die; sysopen(my $g, "suid3", 0101, 04755) ? print "CREATED\\n" : print "create refused: $!\\n"')}; echo end`,
        );
        assert.match(r.text, /create refused: Operation not permitted/);
        const workspace = String(((await rig.rpc('session/get', { sessionId })).result as { workspace: string }).workspace);
        for (const name of ['suid', 'suid2', 'suid3']) {
          const mode = existsSync(join(workspace, name)) ? statSync(join(workspace, name)).mode : 0;
          assert.equal(mode & 0o6000, 0, `${name} has no setuid or setgid bit outside`);
        }
      });
    }

    it('sees no host device and, under the filter, cannot open VM sockets', async () => {
      const r = await rig.bash(sessionId, `echo "devices:[$(ls /dev | tr '\\n' ' ')]"; head -c1 /dev/vda && echo READ-DISK; ${perl(`my $fd = syscall(${NR.socket}, 40, 1, 0); print $fd >= 0 ? "VSOCK\\n" : "vsock refused: $!\\n"`)}`);
      assert.match(r.text, /^devices:\[(core )?fd full null ptmx pts random shm stderr stdin stdout tty urandom zero \]\n/);
      assert.doesNotMatch(r.text, /READ-DISK/);
      if (level === 'bwrap') assert.match(r.text, /vsock refused: Address family not supported/);
    });
  });
}
