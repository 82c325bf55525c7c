package tftp

import (
	"fmt"
	"strings"
)

// Limits on request names. Phones ask for short flat names
// (`0004f2123456.cfg`, `3111-40250-001.sip.ld`) or a few directory levels.
const (
	maxNameLen   = 255
	maxNameDepth = 8
)

// CleanName turns a requested TFTP file name into the name the FileSystem
// sees, or refuses it with ErrInvalidName. Exactly one leading "/" is
// stripped (many phones send "/file.cfg"). Refused: empty names, absolute
// paths after that, "." and ".." and other dot-leading segments, empty
// segments, backslashes, NUL and control bytes, percent signs, colons, any
// non-ASCII byte (so no overlong or look-alike encodings), and over-long or
// over-deep names. Only A-Z a-z 0-9 and . _ - + ~ @ = , / are accepted.
func CleanName(raw string) (string, error) {
	if len(raw) > maxNameLen {
		return "", fmt.Errorf("name longer than %d bytes: %w", maxNameLen, ErrInvalidName)
	}
	name := strings.TrimPrefix(raw, "/")
	if name == "" {
		return "", fmt.Errorf("empty name: %w", ErrInvalidName)
	}
	for i := 0; i < len(name); i++ {
		if !nameByte(name[i]) {
			return "", fmt.Errorf("byte 0x%02x at %d: %w", name[i], i, ErrInvalidName)
		}
	}
	depth := 0
	for seg := range strings.SplitSeq(name, "/") {
		depth++
		switch {
		case seg == "":
			return "", fmt.Errorf("empty path segment: %w", ErrInvalidName)
		case seg[0] == '.':
			return "", fmt.Errorf("dot segment %q: %w", seg, ErrInvalidName)
		}
	}
	if depth > maxNameDepth {
		return "", fmt.Errorf("deeper than %d: %w", maxNameDepth, ErrInvalidName)
	}
	return name, nil
}

// nameByte reports whether b may appear in a served name.
func nameByte(b byte) bool {
	switch {
	case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9':
		return true
	}
	return strings.IndexByte("._-+~@=,/", b) >= 0
}
