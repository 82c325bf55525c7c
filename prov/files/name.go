package files

import (
	"fmt"
	"strings"

	"hotdesk/prov"
)

// FileKind classifies a name of the namespace; it is a bounded metric label.
type FileKind string

// File kinds.
const (
	// KindMaster is 000000000000.cfg or <MAC>.cfg, the <APPLICATION> file.
	KindMaster FileKind = "master"
	// KindDeviceConfig is <MAC>-hotdesk.cfg: device account, site, login policy.
	KindDeviceConfig FileKind = "device"
	// KindUserConfig is <user>.cfg: the logged-in user's lines and settings.
	KindUserConfig FileKind = "user"
	// KindDirectory is <MAC>-directory.xml or <user>-directory.xml.
	KindDirectory FileKind = "directory"
	// KindCalls is <MAC>-calls.xml or <user>-calls.xml.
	KindCalls FileKind = "calls"
	// KindOverride is <MAC>-phone.cfg, <MAC>-web.cfg or <user>-phone.cfg.
	KindOverride FileKind = "override"
	// KindLog is <MAC>-app.log or <MAC>-boot.log (write-only).
	KindLog FileKind = "log"
	// KindStatic is a file from static_dir (firmware, dictionaries).
	KindStatic FileKind = "static"
	// KindOther labels refused names in metrics.
	KindOther FileKind = "other"
)

// DeviceConfigSuffix names the device/site file the master file lists.
const DeviceConfigSuffix = "-hotdesk.cfg"

// parsedName is a clean name and what it refers to.
type parsedName struct {
	name   string
	kind   FileKind
	mac    string // lowercase, "" for 000000000000.cfg and user files
	user   string
	suffix string // upload name: phone.cfg, web.cfg, directory.xml, calls.xml, app.log, boot.log
	// dir is the profile directory a user, directory or call-list file was
	// asked for in (<dir>/<name>, the site's ProfileDirs); full is the
	// path as asked, served as a static file when dir is not the site's.
	dir, full string
	// vendor is set when the name was read as that vendor's (VendorFile);
	// boot marks the vendor's first file, which enrolls an unknown device.
	vendor       string
	boot, enroll bool
}

// path is the name as asked for, directory included.
func (p parsedName) path() string {
	if p.full != "" {
		return p.full
	}
	return p.name
}

// profileDir is the site directory the file lives in ("" for none).
func (p parsedName) profileDir(d prov.ProfileDirs) (string, bool) {
	switch {
	case p.kind == KindUserConfig, p.kind == KindOverride && p.user != "":
		return d.UserProfiles, true
	case p.kind == KindDirectory:
		return d.Contacts, true
	case p.kind == KindCalls:
		return d.CallLists, true
	}
	return "", false
}

// userData reports a file that may hold a user's lines, directory, call
// lists or settings.
func (p parsedName) userData() bool {
	switch p.kind {
	case KindUserConfig, KindDirectory, KindOverride, KindCalls:
		return true
	}
	return false
}

// writable reports whether a phone may upload to the name.
func (p parsedName) writable() bool {
	switch p.kind {
	case KindOverride, KindDirectory, KindCalls:
		return true
	case KindLog:
		return p.mac != ""
	}
	return false
}

var macSuffixes = []struct {
	suffix string
	kind   FileKind
}{
	{DeviceConfigSuffix, KindDeviceConfig},
	{"-phone.cfg", KindOverride}, {"-web.cfg", KindOverride},
	{"-directory.xml", KindDirectory}, {"-calls.xml", KindCalls},
	{"-app.log", KindLog}, {"-boot.log", KindLog},
}

var userSuffixes = []struct {
	suffix string
	kind   FileKind
}{
	{"-phone.cfg", KindOverride}, {"-directory.xml", KindDirectory}, {"-calls.xml", KindCalls},
	{".cfg", KindUserConfig},
}

// cleanName refuses anything but a relative, slash-separated path of
// segments made of [A-Za-z0-9._@+-], none empty, "." or "..", none starting
// with '.', at most 255 bytes. That rules out traversal, absolute paths,
// NUL, backslashes, control characters, percent-encodings and non-ASCII.
func cleanName(p string) (string, error) {
	if p == "" || len(p) > 255 {
		return "", fmt.Errorf("%w: length", ErrBadName)
	}
	// Bounded: each turn takes one segment off rest (no Split: names are
	// checked several times per request).
	for rest, more := p, true; more; {
		var seg string
		seg, rest, more = strings.Cut(rest, "/")
		if seg == "" || seg[0] == '.' {
			return "", fmt.Errorf("%w: segment %q", ErrBadName, seg)
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
				c == '.' || c == '_' || c == '@' || c == '+' || c == '-'
			if !ok {
				return "", fmt.Errorf("%w: character %q", ErrBadName, c)
			}
		}
	}
	return p, nil
}

// parseName classifies a name. Only top-level names are dynamic; names in
// subdirectories are static files. A 12-hex-digit prefix is a MAC, so a
// user named like a MAC cannot be served by name.
func parseName(p string) (parsedName, error) {
	name, err := cleanName(p)
	if err != nil {
		return parsedName{}, err
	}
	pn := parsedName{name: name, kind: KindStatic}
	if strings.Contains(name, "/") {
		// <dir>/<name>: a file the site keeps in a profile directory; the
		// caller checks dir against the device's site (checkDir).
		if dir, rest, _ := strings.Cut(name, "/"); !strings.Contains(rest, "/") {
			if sub, err := parseName(rest); err == nil {
				if _, ok := sub.profileDir(prov.ProfileDirs{}); ok {
					sub.dir, sub.full = dir, name
					return sub, nil
				}
			}
		}
		return pn, nil
	}
	if name == "000000000000.cfg" {
		pn.kind = KindMaster
		return pn, nil
	}
	if len(name) > 12 && isHex12(name[:12]) {
		rest := name[12:]
		mac := strings.ToLower(name[:12])
		if mac == "000000000000" {
			return pn, nil // 000000000000-directory.xml etc.: static only
		}
		if rest == ".cfg" {
			pn.kind, pn.mac = KindMaster, mac
			return pn, nil
		}
		for _, s := range macSuffixes {
			if rest == s.suffix {
				pn.kind, pn.mac, pn.suffix = s.kind, mac, s.suffix[1:]
				return pn, nil
			}
		}
		return pn, nil
	}
	for _, s := range userSuffixes {
		if u, ok := strings.CutSuffix(name, s.suffix); ok && u != "" {
			pn.kind, pn.user, pn.suffix = s.kind, u, strings.TrimPrefix(s.suffix, "-")
			return pn, nil
		}
	}
	return pn, nil
}

// UserOfFile returns the user a file name belongs to (<user>.cfg,
// <user>-directory.xml, …), "" for a device's file or a bad name.
func UserOfFile(path string) string {
	pn, err := parseName(path)
	if err != nil {
		return ""
	}
	return pn.user
}

// isHex12 reports whether s is exactly 12 hex digits (any case).
func isHex12(s string) bool {
	if len(s) != 12 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}
