package tftp

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

func TestDirFS(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.cfg"), []byte("hello"), 0o644)
	os.Mkdir(filepath.Join(dir, "fw"), 0o755)
	os.WriteFile(filepath.Join(outside, "secret"), []byte("no"), 0o644)
	os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "escape"))
	d, err := NewDirFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, remote := context.Background(), netip.MustParseAddrPort("127.0.0.1:1")
	f, err := d.Open(ctx, "a.cfg", remote)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(f)
	f.Close()
	if string(b) != "hello" || f.Size() != 5 {
		t.Errorf("a.cfg = %q size %d", b, f.Size())
	}
	for name, want := range map[string]error{"missing": ErrNotFound, "fw": ErrNotFound, "escape": ErrForbidden} {
		if _, err := d.Open(ctx, name, remote); !errors.Is(err, want) {
			t.Errorf("Open(%q) = %v, want %v", name, err, want)
		}
	}
	if _, err := d.Create(ctx, "new.cfg", remote); !errors.Is(err, ErrForbidden) {
		t.Errorf("Create = %v, want ErrForbidden", err)
	}
}
