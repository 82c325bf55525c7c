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
	// Nodes are every cluster node's SIP address as phones reach it (host
	// or host:port): each line names the node that served the file first,
	// then the others, for the phone to fail over to.
	Nodes []string
}

// Source is one contribution to a precedence layer.
type Source struct {
	Layer  prov.Layer
	Source string
	Params map[string]string
}

// Vendor renders one family of phones.
type Vendor interface {
	// Name is the vendor key (Device.Vendor) it serves.
	Name() string
	// Sources returns v's parameter sources, lowest precedence first.
	Sources(v *prov.View) []Source
	// Render produces a file of kind; ErrNotFound when the vendor has none.
	Render(kind prov.FileKind, v *prov.View, srcs []Source) ([]byte, error)
	ContentType(kind prov.FileKind) string
}

// Set dispatches on the device's vendor; it implements prov.Renderer.
// Unknown vendors get the default (Polycom UC Software) renderer, since
// the namespace follows Polycom's names.
type Set struct {
	vendors map[string]Vendor
	def     Vendor
}

var _ prov.Renderer = (*Set)(nil)

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
	tm, err := loadTemplates(cfg.TemplatesDir, "polycom", logger)
	if err != nil {
		return nil, fmt.Errorf("render: %w", err)
	}
	p := &polycom{cfg: cfg, t: tm}
	s := &Set{vendors: map[string]Vendor{"polycom": p, "spectralink": p}, def: p}
	return s, nil
}

func (s *Set) vendor(v *prov.View) Vendor {
	if vv, ok := s.vendors[strings.ToLower(v.Device.Vendor)]; ok {
		return vv
	}
	return s.def
}

// Render implements prov.Renderer.
func (s *Set) Render(_ context.Context, kind prov.FileKind, v *prov.View) ([]byte, error) {
	vv := s.vendor(v)
	return vv.Render(kind, v, vv.Sources(v))
}

// ContentType implements prov.Renderer.
func (s *Set) ContentType(v *prov.View, kind prov.FileKind) string {
	return s.vendor(v).ContentType(kind)
}

// Effective implements prov.Renderer: the merge of every source of v.
func (s *Set) Effective(v *prov.View) ([]prov.Param, error) {
	return Effective(s.vendor(v).Sources(v)), nil
}

// Merge applies srcs in order (later wins) and returns each parameter with
// the source it came from. Invalid parameter names are dropped.
func Merge(srcs []Source) map[string]prov.Param {
	out := map[string]prov.Param{}
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

// xmlEscape escapes s for an XML attribute or text node.
func xmlEscape(s string) (string, error) {
	var b bytes.Buffer
	if err := xml.EscapeText(&b, []byte(s)); err != nil {
		return "", err
	}
	return b.String(), nil
}

// loadTemplates parses the built-in templates of vendor, each replaced by
// <dir>/<vendor>/<name> when that file exists.
func loadTemplates(dir, vendor string, logger *slog.Logger) (*template.Template, error) {
	names, err := builtin.ReadDir("templates/" + vendor)
	if err != nil {
		return nil, err
	}
	root := template.New(vendor).Funcs(template.FuncMap{"xml": xmlEscape}).Option("missingkey=error")
	for _, e := range names {
		name := e.Name()
		src, err := builtin.ReadFile("templates/" + vendor + "/" + name)
		if err != nil {
			return nil, err
		}
		if dir != "" {
			b, err := os.ReadFile(filepath.Join(dir, vendor, name))
			switch {
			case err == nil:
				src = b
				logger.Info("template overridden", "vendor", vendor, "name", name)
			case !errors.Is(err, os.ErrNotExist):
				return nil, fmt.Errorf("template %s/%s: %w", vendor, name, err)
			}
		}
		if _, err := root.New(strings.TrimSuffix(name, ".tmpl")).Parse(string(src)); err != nil {
			return nil, fmt.Errorf("template %s/%s: %w", vendor, name, err)
		}
	}
	return root, nil
}
