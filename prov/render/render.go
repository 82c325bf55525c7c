package render

import (
	"bytes"
	"context"
	"embed"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"hotdesk/prov"
	"hotdesk/prov/files"
)

//go:embed templates
var builtin embed.FS

// Config is how rendering is tuned; the daemon fills it from the
// provisioning section (templates_dir) and the SIP section (port).
type Config struct {
	// TemplatesDir holds admin templates: <dir>/<vendor>/<name>.tmpl
	// replaces the built-in template of that name ("" = built-ins only).
	TemplatesDir string
	// SIPPort is the registrar's port rendered into lines.
	SIPPort int
	// AppFilePath is the firmware the Polycom master file names.
	AppFilePath string
	// FirmwareURLs is the firmware each vendor's files name, by vendor key
	// (yealink, cisco, snom, grandstream, fanvil); a vendor without one
	// keeps the firmware its phones run. Polycom's is AppFilePath.
	FirmwareURLs map[string]string
	// Nodes are every cluster node's SIP address as phones reach it (host
	// or host:port): each line names the node that served the file first,
	// then the others, for the phone to fail over to.
	Nodes []string
	// SRVDomain, when set, is the name phones resolve with DNS SRV (NAPTR
	// where the vendor does it first) to find the nodes, instead of the
	// node addresses: each line names it in its vendor's SRV mode and no
	// backup node (the records list them all). The admin publishes the
	// records (hotdeskd check-config prints them).
	SRVDomain string
}

// Source is one contribution to a precedence layer.
type Source struct {
	Layer  prov.Layer
	Source string
	Params map[string]string
}

// Vendor renders one family of phones. A vendor plugs in with one file in
// this package (its renderer, its parameter list), its golden files under
// testdata/<vendor>/, and one line in New.
type Vendor interface {
	// Name is the vendor key (Device.Vendor) it serves.
	Name() string
	// Sources returns v's parameter sources, lowest precedence first.
	Sources(v *prov.View) []Source
	// Render produces a file of kind; ErrNotFound when the vendor has none.
	Render(kind files.FileKind, v *prov.View, srcs []Source) ([]byte, error)
	ContentType(kind files.FileKind) string
	// Files reads a top-level name its phones request (false: not one).
	Files(name string) (files.VendorFile, bool)
	// SyncEvent is the NOTIFY Event header value that makes its phones
	// re-provision; reboot asks them to reboot as well.
	SyncEvent(reboot bool) string
	// KnownParam reports whether name is one of its phones' parameters: an
	// admin's raw override "<vendor>:<name>" must be one.
	KnownParam(name string) bool
}

// VendorPrefix starts a raw override meant for one vendor's phones only
// ("yealink:features.dnd.enable"): it is validated against that vendor's
// parameters and rendered only into that vendor's files. Polycom's
// parameters keep their bare names.
const VendorPrefix = ":"

// Set dispatches on the device's vendor; it implements files.Renderer.
// Unknown vendors get the default (Polycom UC Software) renderer, since
// the namespace follows Polycom's names.
type Set struct {
	vendors map[string]Vendor
	def     Vendor
	// others are the vendors besides Polycom, whose names VendorFiles reads.
	others []Vendor
}

var _ files.Renderer = (*Set)(nil)

// New returns the renderers with their templates loaded (admin overrides
// from cfg.TemplatesDir replace built-ins); a bad template fails here.
func New(cfg Config, logger *slog.Logger) (*Set, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.SIPPort == 0 {
		cfg.SIPPort = 5060
	}
	if cfg.AppFilePath == "" {
		cfg.AppFilePath = "sip.ld"
	}
	tm, overridden, err := loadTemplates(cfg.TemplatesDir, "polycom", logger)
	if err != nil {
		return nil, fmt.Errorf("render: %w", err)
	}
	zones := &zoneCache{}
	p := &polycom{cfg: cfg, t: tm, zones: zones, builtinConfig: !overridden["config.cfg"],
		builtinMaster: !overridden["master.cfg"]}
	s := &Set{vendors: map[string]Vendor{"polycom": p, "spectralink": p}, def: p}
	for _, v := range others(cfg, zones) {
		s.vendors[v.Name()] = v
		s.others = append(s.others, v)
	}
	return s, nil
}

var _ files.VendorNames = (*Set)(nil)

// VendorFiles implements files.VendorNames.
func (s *Set) VendorFiles(name string) []files.VendorFile {
	var out []files.VendorFile
	for _, v := range s.others {
		if f, ok := v.Files(name); ok {
			f.Vendor = v.Name()
			out = append(out, f)
		}
	}
	return out
}

// SyncEvent is the re-sync NOTIFY event for a device of vendor (Polycom's
// for an unknown one), without a Set: what names it needs no configuration.
func SyncEvent(vendor string, reboot bool) string {
	for _, v := range others(Config{}, nil) {
		if v.Name() == strings.ToLower(vendor) {
			return v.SyncEvent(reboot)
		}
	}
	return (&polycom{}).SyncEvent(reboot)
}

// FirmwareVendors are the vendor keys Config.FirmwareURLs takes: every
// vendor but Polycom, whose firmware is AppFilePath.
func FirmwareVendors() []string {
	var out []string
	for _, v := range others(Config{}, nil) {
		out = append(out, v.Name())
	}
	return out
}

// others are the vendors besides Polycom: a new vendor is one line here.
func others(cfg Config, zones *zoneCache) []Vendor {
	return []Vendor{newYealink(cfg, zones), newCisco(cfg, zones), newSnom(cfg, zones), newGrandstream(cfg, zones), newFanvil(cfg, zones)}
}

// SyncEvent is the re-sync NOTIFY event for a device of vendor (Polycom's
// for an unknown one).
func (s *Set) SyncEvent(vendor string, reboot bool) string {
	if v, ok := s.vendors[strings.ToLower(vendor)]; ok {
		return v.SyncEvent(reboot)
	}
	return s.def.SyncEvent(reboot)
}

// KnownParam implements prov.ParamCatalog: a bare name is Polycom's, a
// "<vendor>:<name>" one that vendor's.
func (s *Set) KnownParam(name string) (known, vendorKnown bool) {
	vendor, rest, ok := strings.Cut(name, VendorPrefix)
	if !ok {
		return s.def.KnownParam(name), true
	}
	v, ok := s.vendors[vendor]
	if !ok || v == s.def {
		return false, false
	}
	return v.KnownParam(rest), true
}

// Catalog implements prov.ParamCatalog without a Set: the parameter lists
// need no configuration.
type Catalog struct{}

var _ prov.ParamCatalog = Catalog{}

// KnownParam implements prov.ParamCatalog.
func (Catalog) KnownParam(name string) (known, vendorKnown bool) {
	s := &Set{vendors: map[string]Vendor{}, def: &polycom{}}
	for _, v := range others(Config{}, nil) {
		s.vendors[v.Name()] = v
	}
	s.vendors["polycom"], s.vendors["spectralink"] = s.def, s.def
	return s.KnownParam(name)
}

// vendorParams are the raw overrides of m meant for vendor, prefix cut.
func vendorParams(vendor string, m map[string]string) map[string]string {
	out := map[string]string{}
	for k, val := range m {
		if rest, ok := strings.CutPrefix(k, vendor+VendorPrefix); ok {
			out[rest] = val
		}
	}
	return out
}

func (s *Set) vendor(v *prov.View) Vendor {
	if vv, ok := s.vendors[strings.ToLower(v.Device.Vendor)]; ok {
		return vv
	}
	return s.def
}

// Render implements files.Renderer.
func (s *Set) Render(_ context.Context, kind files.FileKind, v *prov.View) ([]byte, error) {
	vv := s.vendor(v)
	var srcs []Source
	if ns, ok := vv.(sourcesNeeder); !ok || ns.needsSources(kind) {
		srcs = vv.Sources(v)
	}
	return vv.Render(kind, v, srcs)
}

// sourcesNeeder is a Vendor that renders some kinds of file without the
// parameter sources (a boot file names other files, a directory lists
// contacts), so they are not built for those.
type sourcesNeeder interface {
	needsSources(kind files.FileKind) bool
}

// ContentType implements files.Renderer.
func (s *Set) ContentType(v *prov.View, kind files.FileKind) string {
	return s.vendor(v).ContentType(kind)
}

// Effective implements files.Renderer: the merge of every source of v,
// with what the vendor's files treat as a secret masked (a Cisco
// Profile_Rule carries --pwd, a Yealink unlock PIN is no "password").
func (s *Set) Effective(v *prov.View) ([]prov.Param, error) {
	vv := s.vendor(v)
	ps := Effective(vv.Sources(v))
	if sec, ok := vv.(interface{ secret(string) bool }); ok {
		for i := range ps {
			if sec.secret(ps[i].Name) && ps[i].Value != "" {
				ps[i].Value = "********"
			}
		}
	}
	return ps, nil
}

// Merge applies srcs in order (later wins) and returns each parameter with
// the source it came from. Invalid parameter names are dropped.
func Merge(srcs []Source) map[string]prov.Param {
	n := 0
	for _, s := range srcs {
		n += len(s.Params)
	}
	// Sized for every source at once: the map never grows (rehashing was
	// a good part of a render's garbage in a boot storm).
	out := make(map[string]prov.Param, n)
	for _, s := range srcs {
		for name, val := range s.Params {
			if !prov.ValidParamName(name) {
				continue
			}
			out[name] = prov.Param{Name: name, Value: val, Layer: s.Layer, Source: s.Source}
		}
	}
	return out
}

// Effective is Merge as a list sorted by name.
func Effective(srcs []Source) []prov.Param {
	m := Merge(srcs)
	out := make([]prov.Param, 0, len(m))
	for _, p := range m {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// only keeps the sources of the given layers.
func only(srcs []Source, layers ...prov.Layer) []Source {
	var out []Source
	for _, s := range srcs {
		for _, l := range layers {
			if s.Layer == l {
				out = append(out, s)
				break
			}
		}
	}
	return out
}

// xmlEscape escapes s for an XML attribute or text node: s itself when
// nothing in it needs escaping, most values, which then cost no garbage.
func xmlEscape(s string) (string, error) {
	if !needsXMLEscape(s) {
		return s, nil
	}
	var b bytes.Buffer
	if err := xml.EscapeText(&b, []byte(s)); err != nil {
		return "", err
	}
	return b.String(), nil
}

// needsXMLEscape reports whether xml.EscapeText may change s: a character
// it escapes, a control character, or a non-ASCII byte (which it checks
// for valid UTF-8 in XML's character range). Printable ASCII it keeps.
func needsXMLEscape(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20, c >= 0x80, c == '"', c == '\'', c == '&', c == '<', c == '>':
			return true
		}
	}
	return false
}

// writeXMLEscaped writes s to b as xmlEscape would return it.
func writeXMLEscaped(b *bytes.Buffer, s string) {
	if !needsXMLEscape(s) {
		b.WriteString(s)
		return
	}
	_ = xml.EscapeText(b, []byte(s)) // a bytes.Buffer does not fail
}

// loadTemplates parses the built-in templates of vendor, each replaced by
// <dir>/<vendor>/<name> when that file exists; overridden holds the names
// (without .tmpl) so replaced.
func loadTemplates(dir, vendor string, logger *slog.Logger) (_ *template.Template, overridden map[string]bool, _ error) {
	names, err := builtin.ReadDir("templates/" + vendor)
	if err != nil {
		return nil, nil, err
	}
	overridden = map[string]bool{}
	root := template.New(vendor).Funcs(template.FuncMap{"xml": xmlEscape}).Option("missingkey=error")
	for _, e := range names {
		name := e.Name()
		src, err := builtin.ReadFile("templates/" + vendor + "/" + name)
		if err != nil {
			return nil, nil, err
		}
		if dir != "" {
			b, err := os.ReadFile(filepath.Join(dir, vendor, name))
			switch {
			case err == nil:
				src = b
				overridden[strings.TrimSuffix(name, ".tmpl")] = true
				logger.Info("template overridden", "vendor", vendor, "name", name)
			case !errors.Is(err, os.ErrNotExist):
				return nil, nil, fmt.Errorf("template %s/%s: %w", vendor, name, err)
			}
		}
		if _, err := root.New(strings.TrimSuffix(name, ".tmpl")).Parse(string(src)); err != nil {
			return nil, nil, fmt.Errorf("template %s/%s: %w", vendor, name, err)
		}
	}
	return root, overridden, nil
}
