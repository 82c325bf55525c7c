package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"hotdesk/prov"
)

const (
	helperEnv = "HOTDESK_STORE_HELPER" // what the re-executed test binary does
	dirEnv    = "HOTDESK_STORE_DIR"
	prefixEnv = "HOTDESK_STORE_PREFIX"
)

// TestHelperProcess is not a test: it is the child process the tests below
// start by re-executing the test binary.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("helper process only")
	}
	ctx := context.Background()
	dir := os.Getenv(dirEnv)
	switch mode {
	case "lock":
		s, err := Open(ctx, DefaultConfig(), dir, nil, nil)
		if errors.Is(err, prov.ErrDataDirLocked) {
			fmt.Println("refused:", err)
			os.Exit(0)
		}
		fmt.Println("not refused:", err)
		if s != nil {
			s.Close()
		}
		os.Exit(3)
	case "crash":
		crashWriter(ctx, dir, os.Getenv(prefixEnv))
	}
	os.Exit(4)
}

// crashWriter writes until killed: each transaction touches several tables,
// and its user ID is printed only once the commit returned.
func crashWriter(ctx context.Context, dir, prefix string) {
	s, err := Open(ctx, DefaultConfig(), dir, nil, nil)
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(5)
	}
	fmt.Println("ready")
	for i := 0; ; i++ {
		u := prov.User{Username: fmt.Sprintf("%s-%d", prefix, i), Params: map[string]string{"i": strconv.Itoa(i)}}
		err := s.WithTx(ctx, func(tx prov.Store) error {
			if err := tx.CreateUser(ctx, &u); err != nil {
				return err
			}
			if err := tx.AssignNumber(ctx, u.Username, u.ID); err != nil {
				return err
			}
			bs := make([]prov.Binding, 20)
			for j := range bs {
				bs[j] = prov.Binding{AOR: u.Username, Contact: strconv.Itoa(j), UserAgent: strings.Repeat("x", 200)}
			}
			if err := tx.SaveBindings(ctx, bs, nil); err != nil {
				return err
			}
			_, err := tx.PutUpload(ctx, prov.Upload{Owner: "user:" + prefix, Name: "f", Data: make([]byte, 4096)}, 3)
			return err
		})
		if err != nil {
			fmt.Println("write:", err)
			os.Exit(6)
		}
		fmt.Println("committed", u.ID)
	}
}

func helperCmd(t *testing.T, mode, dir string, extraEnv ...string) *exec.Cmd {
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, dirEnv+"="+dir)
	cmd.Env = append(cmd.Env, extraEnv...)
	cmd.Stderr = os.Stderr
	return cmd
}

func TestLockOtherProcess(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	out, err := helperCmd(t, "lock", dir).Output()
	if err != nil {
		t.Fatalf("child: %v, output %q", err, out)
	}
	if !strings.Contains(string(out), "refused:") || !strings.Contains(string(out), "is hotdeskd already running") {
		t.Fatalf("child output %q", out)
	}
	must(t, s.Close())
	// Once the lock is released the child gets in (and exits 3: "not refused").
	err = helperCmd(t, "lock", dir).Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("child after Close: %v", err)
	}
}

// TestCrashSafety kills a writing child with SIGKILL at a random point,
// several times over the same data dir, and checks after each kill that the
// database passes integrity_check and holds every commit the child reported.
func TestCrashSafety(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	var committed []int64
	for round := range 3 {
		cmd := helperCmd(t, "crash", dir, prefixEnv+"="+strconv.Itoa(round))
		stdout, err := cmd.StdoutPipe()
		must(t, err)
		must(t, cmd.Start())
		sc := bufio.NewScanner(stdout)
		killAfter := 10 + rand.IntN(30)
		seen := 0
		deadline := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
		for sc.Scan() {
			line := sc.Text()
			if line == "ready" {
				continue
			}
			idText, ok := strings.CutPrefix(line, "committed ")
			if !ok {
				t.Fatalf("child: %s", line)
			}
			id, err := strconv.ParseInt(idText, 10, 64)
			must(t, err)
			committed = append(committed, id)
			if seen++; seen == killAfter {
				must(t, cmd.Process.Signal(syscall.SIGKILL))
			}
		}
		deadline.Stop()
		err = cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child did not die by SIGKILL: %v", round, err)
		}
		if seen < killAfter {
			t.Fatalf("round %d: child stopped after %d commits", round, seen)
		}

		s := open(t, dir)
		if err := s.IntegrityCheck(ctx); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for _, id := range committed {
			u, err := s.GetUserByID(ctx, id)
			if err != nil {
				t.Fatalf("round %d: committed user %d: %v", round, id, err)
			}
			if nums, err := s.NumbersOf(ctx, id); err != nil || len(nums) != 1 {
				t.Fatalf("round %d: numbers of %s: %v %v", round, u.Username, nums, err)
			}
		}
		must(t, s.Close())
	}
	t.Logf("%d commits reported and found after 3 SIGKILLs", len(committed))
}
