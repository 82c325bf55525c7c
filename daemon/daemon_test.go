package daemon

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"hotdesk/prov"
	"hotdesk/prov/auth"
)

// testConfig is a configuration on ephemeral loopback ports in a temp dir.
func testConfig(t *testing.T, dataDir string) Config {
	t.Helper()
	cfg, err := Parse([]byte(`
data_dir: ` + dataDir + `
log: {level: debug}
admin: {listen: "127.0.0.1:0", initial_password: "test-admin-pw"}
provisioning: {http_listen: "127.0.0.1:0", tftp_listen: "127.0.0.1:0"}
sip: {listen: ["udp://127.0.0.1:0", "tcp://127.0.0.1:0"], domain: test.lan}
`))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// startDaemon runs Run in the background and returns the bound addresses
// and a stop function that waits for Run's result.
func startDaemon(t *testing.T, cfg Config, opts Options) (Addrs, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan Addrs, 1)
	opts.OnReady = func(a Addrs) { ready <- a }
	done := make(chan error, 1)
	// The daemon's debug log is kept (its last lines) and shown when the
	// test fails, so a failure on a loaded CI machine can be read after.
	tail := &logTail{}
	var out io.Writer = tail
	if testing.Verbose() {
		out = io.MultiWriter(tail, os.Stderr)
	}
	logger := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(func() {
		if t.Failed() && !testing.Verbose() {
			t.Logf("the daemon's last log lines:\n%s", tail.String())
		}
	})
	go func() { done <- Run(ctx, cfg, opts, logger) }()
	select {
	case a := <-ready:
		var once sync.Once
		var stopErr error
		stop := func() error {
			once.Do(func() {
				cancel()
				select {
				case stopErr = <-done:
				case <-time.After(6 * time.Second):
					stopErr = errors.New("Run did not return within 6 s of cancel")
				}
			})
			return stopErr
		}
		t.Cleanup(func() { _ = stop() })
		return a, stop
	case err := <-done:
		cancel()
		t.Fatalf("Run failed before ready: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("daemon not ready within 30 s")
	}
	return Addrs{}, nil
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestRunHealthzMetricsAndStop(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	a, stop := startDaemon(t, cfg, Options{Version: "test-1"})

	code, body := get(t, "http://"+a.Admin+"/healthz")
	if code != 200 || !strings.Contains(body, `"ok"`) {
		t.Fatalf("healthz = %d %s", code, body)
	}
	code, body = get(t, "http://"+a.Admin+"/metrics")
	if code != 200 {
		t.Fatalf("metrics = %d", code)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("metrics exposition does not parse: %v", err)
	}
	for _, name := range []string{"hotdesk_build_info", "go_goroutines", "process_resident_memory_bytes", "hotdesk_listener_up"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("metric %s missing", name)
		}
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: install Debian's prometheus package (make test does)")
	}
	check := exec.Command(promtool, "check", "metrics")
	check.Stdin = strings.NewReader(body)
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics on a live /metrics: %v\n%s", err, out)
	}
	bi := fams["hotdesk_build_info"].GetMetric()[0]
	if v := labelValue(bi.GetLabel(), "version"); v != "test-1" {
		t.Errorf("build_info version = %q", v)
	}
	for _, m := range fams["hotdesk_listener_up"].GetMetric() {
		if m.GetGauge().GetValue() != 1 {
			t.Errorf("listener %v not up", m.GetLabel())
		}
	}

	start := time.Now()
	if err := stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("graceful stop took %v", d)
	}
}

func labelValue(ls []*dto.LabelPair, name string) string {
	for _, l := range ls {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func TestSecondDaemonOnSameDataDirRefused(t *testing.T) {
	dir := t.TempDir()
	startDaemon(t, testConfig(t, dir), Options{})
	err := Run(context.Background(), testConfig(t, dir), Options{}, slog.New(slog.DiscardHandler))
	if err == nil || !errors.Is(err, prov.ErrDataDirLocked) {
		t.Fatalf("second Run on %s = %v, want ErrDataDirLocked", dir, err)
	}
}

func TestDemoTwiceDoesNotDuplicate(t *testing.T) {
	dir := t.TempDir()
	for range 2 {
		cfg := testConfig(t, dir)
		cfg.explicit = map[string]bool{"data_dir": true, "admin.listen": true, "provisioning.http_listen": true,
			"provisioning.tftp_listen": true, "sip.listen": true, "admin.initial_password": true}
		_, stop := startDaemon(t, cfg, Options{Demo: true, Banner: io.Discard})
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	}
	st, closeStore, err := openStore(context.Background(), testConfig(t, dir), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore()
	ctx := context.Background()
	users, _ := st.CountUsers(ctx)
	devices, _ := st.CountDevices(ctx)
	admins, _ := st.CountAdmins(ctx)
	sites, _ := st.ListSites(ctx)
	if users != 3 || devices != 2 || admins != 1 || len(sites) != 1 {
		t.Fatalf("after two demo starts: users=%d devices=%d admins=%d sites=%d; want 3 2 1 1", users, devices, admins, len(sites))
	}
	alice, err := st.GetUser(ctx, "alice")
	if err != nil || !auth.VerifyPassword(alice.PasswordHash, "alice-demo") {
		t.Fatalf("alice's demo password does not verify (err=%v)", err)
	}
	if n, _ := st.NumbersOf(ctx, alice.ID); len(n) != 1 || n[0] != "1001" {
		t.Fatalf("alice's numbers = %v", n)
	}
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// buildBinary builds cmd/hotdeskd once per test run.
func buildBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "hotdeskd-bin")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "hotdeskd")
		build := exec.Command("go", "build", "-o", binPath, "hotdesk/cmd/hotdeskd")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// TestBinarySIGTERM runs the real binary as systemd would, reloads it with
// SIGHUP (a good and a broken file) and stops it with SIGTERM.
func TestBinarySIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "hotdesk.yaml")
	if err := os.WriteFile(conf, []byte(`
data_dir: `+filepath.Join(dir, "data")+`
admin: {listen: "127.0.0.1:0"}
provisioning: {http_listen: "127.0.0.1:0", tftp_listen: "127.0.0.1:0"}
sip: {listen: ["udp://127.0.0.1:0"]}
memory_limit_mb: 96
max_procs: 1
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "-c", conf)
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "GOMEMLIMIT=") })
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	adminRE := regexp.MustCompile(`msg=ready admin=(\S+)`)
	sc := bufio.NewScanner(stderr)
	var admin string
	var startLog strings.Builder
	deadline := time.AfterFunc(30*time.Second, func() { _ = cmd.Process.Kill() })
	for sc.Scan() {
		line := sc.Text()
		startLog.WriteString(line + "\n")
		if m := adminRE.FindStringSubmatch(line); m != nil {
			admin = m[1]
			break
		}
	}
	deadline.Stop()
	lines := make(chan string, 1000)
	go func() {
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	if admin == "" {
		t.Fatal("binary never logged ready")
	}
	// The generated admin password is in a 0600 file the log names, never
	// in the log itself (journals and log shippers are read more widely).
	pwFile := filepath.Join(dir, "data", InitialPasswordFile)
	b, err := os.ReadFile(pwFile)
	password := strings.TrimSpace(string(b))
	if err != nil || len(password) < 12 {
		t.Errorf("first start wrote no generated admin password to %s (%q, %v)", pwFile, password, err)
	} else if strings.Contains(startLog.String(), password) {
		t.Errorf("the generated admin password is in the log:\n%s", startLog.String())
	}
	if fi, err := os.Stat(pwFile); err == nil && fi.Mode().Perm() != 0o600 {
		t.Errorf("%s is %o, want 600", pwFile, fi.Mode().Perm())
	}
	if !strings.Contains(startLog.String(), "password_file="+pwFile) {
		t.Errorf("the log does not name the password file:\n%s", startLog.String())
	}
	if code, _ := get(t, "http://"+admin+"/healthz"); code != 200 {
		t.Fatalf("healthz = %d", code)
	}
	// memory_limit_mb reaches the runtime: 96 MiB.
	if _, body := get(t, "http://"+admin+"/metrics"); !strings.Contains(body, "go_gc_gomemlimit_bytes 1.00663296e+08") {
		t.Errorf("memory_limit_mb: 96 not applied; metrics say %q", grepLine(body, "go_gc_gomemlimit_bytes "))
	}
	// max_procs reaches the runtime: one P.
	if _, body := get(t, "http://"+admin+"/metrics"); !strings.Contains(body, "go_sched_gomaxprocs_threads 1\n") {
		t.Errorf("max_procs: 1 not applied; metrics say %q", grepLine(body, "go_sched_gomaxprocs_threads "))
	}
	waitLine := func(want string) string {
		t.Helper()
		timeout := time.After(5 * time.Second)
		for {
			select {
			case l := <-lines:
				if strings.Contains(l, want) {
					return l
				}
			case <-timeout:
				t.Fatalf("no log line with %q", want)
			}
		}
	}
	// SIGHUP with a changed file: the log level applies, the rest is named.
	orig, _ := os.ReadFile(conf)
	if err := os.WriteFile(conf, append(append([]byte{}, orig...), "log: {level: debug}\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Process.Signal(syscall.SIGHUP)
	if l := waitLine("msg=reloaded"); !strings.Contains(l, "log_level=debug") {
		t.Errorf("reload line: %s", l)
	}
	// A broken file keeps the running configuration and says so in a metric.
	if err := os.WriteFile(conf, append(append([]byte{}, orig...), "bogus_key: 1\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Process.Signal(syscall.SIGHUP)
	if l := waitLine("reload failed"); !strings.Contains(l, "bogus_key") {
		t.Errorf("failed reload line: %s", l)
	}
	if _, body := get(t, "http://"+admin+"/metrics"); !strings.Contains(body, "hotdesk_config_last_reload_successful 0") {
		t.Error("a failed reload left hotdesk_config_last_reload_successful at 1")
	}
	if code, _ := get(t, "http://"+admin+"/healthz"); code != 200 {
		t.Fatalf("healthz after a failed reload = %d", code)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no exit within 5 s of SIGTERM")
	}
}

// grepLine returns the first line of s that starts with prefix.
func grepLine(s, prefix string) string {
	for l := range strings.Lines(s) {
		if strings.HasPrefix(l, prefix) {
			return strings.TrimSpace(l)
		}
	}
	return ""
}

// logTail keeps the last lines written to it.
type logTail struct {
	mu    sync.Mutex
	lines []string
}

// logTailLines bounds what a failed test prints.
const logTailLines = 400

func (l *logTail) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		l.lines = append(l.lines, line)
	}
	if n := len(l.lines); n > 2*logTailLines {
		l.lines = append(l.lines[:0], l.lines[n-logTailLines:]...)
	}
	return len(p), nil
}

func (l *logTail) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines[max(0, len(l.lines)-logTailLines):], "\n")
}
