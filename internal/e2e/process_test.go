package e2e

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	binDir    string
)

// latchkeyBinary builds cmd/latchkey once per test run, for tests that need a real
// process (signals, SIGKILL).
func latchkeyBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "latchkey-bin-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "latchkey")
		out, err := exec.Command("go", "build", "-o", binPath, "../../cmd/latchkey").CombinedOutput()
		if err != nil {
			buildErr = err
			binPath = string(out)
		}
	})
	if buildErr != nil {
		t.Fatalf("building latchkey: %v: %s", buildErr, binPath)
	}
	return binPath
}

// proc is a latchkey serve process.
type proc struct {
	cmd    *exec.Cmd
	URL    string
	stderr *lockedBuffer
	done   chan struct{}
}

var listening = regexp.MustCompile(`msg=listening url=(http://127\.0\.0\.1:\d+)`)

// startProcess runs `latchkey serve` with args and env and waits until it listens.
func startProcess(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(latchkeyBinary(t), append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, stderr: &lockedBuffer{}, done: make(chan struct{})}
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			line := sc.Text()
			p.stderr.Write([]byte(line + "\n"))
			if m := listening.FindStringSubmatch(line); m != nil {
				urlc <- m[1]
			}
		}
		io.Copy(io.Discard, pipe)
		cmd.Wait()
		close(p.done)
	}()
	select {
	case p.URL = <-urlc:
	case <-p.done:
		t.Fatalf("latchkey serve exited: %s", p.stderr.String())
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("latchkey serve did not start: %s", p.stderr.String())
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("latchkey serve %s exited with %v; its log:\n%s", p.URL, cmd.ProcessState, tail(p.stderr.String(), 6000))
		}
	})
	return p
}

func (p *proc) server() *testServer { return &testServer{URL: p.URL, Clock: newClock()} }

// TestServeProcess runs the real binary: data directory and key file created with
// tight modes, effective configuration logged without secrets, graceful SIGTERM.
func TestServeProcess(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	p := startProcess(t, []string{"LATCHKEY_SMTP_URL=smtp://mailer:hunter2secret@127.0.0.1:2525",
		"LATCHKEY_DATABASE_URL=sqlite:" + filepath.Join(data, "latchkey.db")},
		"--secret-key-file", filepath.Join(data, "secret.key"), "--site-name", "Hugging Face")
	s := p.server()
	s.call(t, "GET", "/healthz", "", nil).want(t, 200)
	log := p.stderr.String()
	if strings.Contains(log, "hunter2secret") {
		t.Fatalf("the start-up log shows the SMTP password: %s", log)
	}
	for _, want := range []string{"starting latchkey", "smtp_url=smtp://mailer:xxxxx@127.0.0.1:2525", `site_name="Hugging Face"`, "database_url=sqlite:"} {
		if !strings.Contains(log, want) {
			t.Errorf("start-up log lacks %q:\n%s", want, log)
		}
	}
	for path, mode := range map[string]os.FileMode{data: 0o700, filepath.Join(data, "secret.key"): 0o600, filepath.Join(data, "latchkey.db"): 0o600} {
		st, err := os.Stat(path)
		if err != nil || st.Mode().Perm() != mode {
			t.Errorf("%s: mode %v (%v), want %v", path, st.Mode().Perm(), err, mode)
		}
	}
	key, _ := os.ReadFile(filepath.Join(data, "secret.key"))
	if len(strings.TrimSpace(string(key))) != 44 {
		t.Errorf("secret.key holds %q, want one line of base64 for 32 bytes", key)
	}
	// SIGTERM: graceful shutdown, exit status 0.
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code after SIGTERM = %d: %s", code, p.stderr.String())
	}
	if !strings.Contains(p.stderr.String(), "shutting down") {
		t.Errorf("no shutdown line in the log")
	}

	// A bad setting: one clear line, non-zero exit.
	out, err := exec.Command(latchkeyBinary(t), "serve", "--totp-window", "7").CombinedOutput()
	if err == nil || strings.Count(strings.TrimSpace(string(out)), "\n") != 0 || !strings.Contains(string(out), "totp-window") {
		t.Fatalf("bad flag: err %v, output %q", err, out)
	}
}
