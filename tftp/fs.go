package tftp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
)

// Outcomes a FileSystem reports, checked with errors.Is. They decide the TFTP
// error message the client sees; the wrapped detail is only logged.
var (
	// ErrNotFound means no such file. The client sees "File not found".
	ErrNotFound = errors.New("file not found")
	// ErrForbidden means the file exists or may exist but this client may not
	// have it. For reads the client sees the same "File not found" as for a
	// missing file, so a wrong MAC cannot be told from a missing one.
	ErrForbidden = errors.New("forbidden")
	// ErrTooLarge means an upload exceeds a size limit (the server's
	// max_upload_bytes or one of the FileSystem's own).
	ErrTooLarge = errors.New("file too large")
	// ErrInvalidName means the requested name was refused by CleanName
	// before any FileSystem saw it.
	ErrInvalidName = errors.New("invalid file name")
)

// FileSystem is the namespace the server serves. Names it receives have
// passed CleanName: relative, slash-separated, no "." or ".." segments, ASCII
// from a small safe set. remote is the client's address (TFTP carries no
// other identity; prov maps it to a device through the DHCP lease).
type FileSystem interface {
	// Open returns the named file for a read request. ctx ends when the
	// transfer's time limit does.
	Open(ctx context.Context, name string, remote netip.AddrPort) (File, error)
	// Create starts an upload for a write request. The server calls exactly
	// one of Commit (all bytes received and within limits) or Abort.
	Create(ctx context.Context, name string, remote netip.AddrPort) (Upload, error)
}

// File is an open file being sent. Size is its length in bytes, or -1 when
// unknown (then the tsize option is not answered).
type File interface {
	io.ReadCloser
	Size() int64
}

// Upload receives a file being written by a client. Nothing may become
// visible to readers before Commit returns nil; Abort discards everything
// written so far. Commit's error is reported to the client.
type Upload interface {
	io.Writer
	Commit() error
	Abort()
}

// DirFS serves the regular files under a directory, read-only, through an
// os.Root so that no name (or symlink) can reach outside it. It is what the
// benchmark serves; the daemon's static files go through prov/files.
type DirFS struct {
	root *os.Root
}

// NewDirFS opens dir as a read-only FileSystem. Close releases it.
func NewDirFS(dir string) (*DirFS, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open root: %w", err)
	}
	return &DirFS{root: r}, nil
}

// Close releases the directory handle.
func (d *DirFS) Close() error { return d.root.Close() }

// Open implements FileSystem. Directories and other non-regular files are
// reported as not found.
func (d *DirFS) Open(_ context.Context, name string, _ netip.AddrPort) (File, error) {
	f, err := d.root.Open(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("open %q: %w", name, ErrNotFound)
		}
		return nil, fmt.Errorf("open %q: %w: %w", name, ErrForbidden, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat %q: %w", name, err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("open %q: not a regular file: %w", name, ErrNotFound)
	}
	return &dirFile{f: f, size: st.Size()}, nil
}

// Create implements FileSystem: DirFS is read-only.
func (d *DirFS) Create(context.Context, string, netip.AddrPort) (Upload, error) {
	return nil, fmt.Errorf("read-only directory: %w", ErrForbidden)
}

// dirFile is a regular file with its size from the Open-time stat.
type dirFile struct {
	f    *os.File
	size int64
}

func (d *dirFile) Read(p []byte) (int, error) { return d.f.Read(p) }
func (d *dirFile) Close() error               { return d.f.Close() }
func (d *dirFile) Size() int64                { return d.size }
