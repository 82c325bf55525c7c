package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"hotdesk/prov/mail"
	"hotdesk/prov/portal"
)

// DefaultConfigPath is read when -c is not given and the file exists.
const DefaultConfigPath = "/etc/hotdesk/hotdesk.yaml"

// Config is the whole configuration file. Every key has a default, so an
// empty file (or none) is a valid configuration.
type Config struct {
	// DataDir holds the database, uploads and generated certificates.
	DataDir string `yaml:"data_dir"`
	// MemoryLimitMB is the Go runtime's soft memory limit in MiB;
	// MemoryLimitAuto (0) takes 90 % of the service's cgroup limit
	// (systemd MemoryMax=/MemoryHigh=) when it has one, MemoryLimitNone
	// (-1) sets none. The GOMEMLIMIT environment variable wins.
	MemoryLimitMB int                `yaml:"memory_limit_mb"`
	Log           LogConfig          `yaml:"log"`
	SIP           SIPConfig          `yaml:"sip"`
	Provisioning  ProvisioningConfig `yaml:"provisioning"`
	DHCP          DHCPConfig         `yaml:"dhcp"`
	Admin         AdminConfig        `yaml:"admin"`
	Store         StoreConfig        `yaml:"store"`
	Cluster       ClusterConfig      `yaml:"cluster"`
	Mail          MailConfig         `yaml:"mail"`

	// MaxProcs caps the threads running Go code at once (GOMAXPROCS);
	// 0 leaves the runtime's choice, every core the service may use.
	MaxProcs int `yaml:"max_procs"`

	// explicit holds the dotted keys the file set, so --demo can move only
	// the listeners the admin did not name.
	explicit map[string]bool
}

// LogConfig selects log level and format.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug|info|warn|error
	Format string `yaml:"format"` // text|json|journal (journal: no timestamps, journald adds them)
}

// AdminConfig is the admin listener: portal, /api/v1, /metrics, /healthz.
type AdminConfig struct {
	Listen  string `yaml:"listen"`
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// InitialUser/InitialPassword name the first admin account; when the
	// password is empty a random one is generated and written to
	// <data_dir>/initial-admin-password (0600), never to the log.
	InitialUser     string `yaml:"initial_user"`
	InitialPassword string `yaml:"initial_password"`
	// Pprof exposes /debug/pprof on the admin listener.
	Pprof bool `yaml:"pprof"`
	// API tunes the /api/v1 JSON API.
	API portal.Config `yaml:"api"`
	// Web tunes the browser portal at /.
	Web portal.WebConfig `yaml:"web"`
	// Metrics protects /metrics (by default open on the admin listener).
	Metrics MetricsConfig `yaml:"metrics"`
}

// MetricsConfig protects the Prometheus endpoint: a bearer token, Basic
// credentials, or a listener of its own that a firewall can keep to the
// monitoring host. None set: /metrics is open on the admin listener.
type MetricsConfig struct {
	// Listen serves /metrics on this address only (plain HTTP), no longer
	// on the admin listener; "" keeps it on the admin listener.
	Listen string `yaml:"listen"`
	// BearerToken, when set, is required as "Authorization: Bearer …".
	BearerToken string `yaml:"bearer_token"`
	// Username and Password, when set, are required as HTTP Basic
	// credentials (either this or the bearer token is accepted).
	Username string `yaml:"username"`
	Password string `yaml:"password"`
}

// Default returns the configuration used when no file names a key.
func Default() Config {
	return Config{
		DataDir:       "/var/lib/hotdesk",
		MemoryLimitMB: MemoryLimitAuto,
		Log:           LogConfig{Level: "info", Format: "text"},
		SIP:           defaultSIP(),
		Provisioning:  defaultProvisioning(),
		DHCP:          defaultDHCP(),
		Admin:         AdminConfig{Listen: ":8081", InitialUser: "admin", API: portal.DefaultConfig(), Web: portal.DefaultWebConfig()},
		Store:         defaultStore(),
		Mail:          mail.DefaultConfig(),
		explicit:      map[string]bool{},
	}
}

// LoadFile reads path (empty: DefaultConfigPath if it exists, else defaults).
func LoadFile(path string) (Config, string, error) {
	if path == "" {
		if _, err := os.Stat(DefaultConfigPath); err != nil {
			return Default(), "", nil
		}
		path = DefaultConfigPath
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, path, fmt.Errorf("config: %w", err)
	}
	cfg, err := Parse(data)
	if err != nil {
		return Config{}, path, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, path, nil
}

// Parse decodes YAML over the defaults and validates the result. Unknown
// keys and bad values are errors that name the key and its line.
func Parse(data []byte) (Config, error) {
	cfg := Default()
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return Config{}, err
	}
	if len(root.Content) == 0 {
		return cfg, cfg.Validate()
	}
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		return Config{}, fmt.Errorf("line %d: the configuration must be a mapping of keys", doc.Line)
	}
	var errs []error
	checkKeys(doc, reflect.TypeOf(cfg), "", cfg.explicit, &errs)
	if len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, cleanYAMLError(err)
	}
	return cfg, cfg.Validate()
}

// checkKeys walks the YAML tree beside the Go type and reports every
// unknown key with its full dotted name and line.
func checkKeys(n *yaml.Node, t reflect.Type, prefix string, seen map[string]bool, errs *[]error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Struct:
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			name := join(prefix, k.Value)
			f, ok := fields[k.Value]
			if !ok {
				*errs = append(*errs, fmt.Errorf("line %d: unknown key %q", k.Line, name))
				continue
			}
			seen[name] = true
			checkKeys(v, f, name, seen, errs)
		}
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Map:
		for i := 0; i+1 < len(n.Content); i += 2 {
			checkKeys(n.Content[i+1], t.Elem(), join(prefix, n.Content[i].Value), seen, errs)
		}
	case n.Kind == yaml.SequenceNode && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array):
		for i, c := range n.Content {
			checkKeys(c, t.Elem(), fmt.Sprintf("%s[%d]", prefix, i), seen, errs)
		}
	}
}

func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := strings.Split(f.Tag.Get("yaml"), ",")
		switch {
		case tag[0] == "-":
		case len(tag) > 1 && tag[1] == "inline":
			for k, v := range yamlFields(f.Type) {
				out[k] = v
			}
		case tag[0] != "":
			out[tag[0]] = f.Type
		default:
			out[strings.ToLower(f.Name)] = f.Type
		}
	}
	return out
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// cleanYAMLError drops the library's Go type names, which mean nothing to an admin.
func cleanYAMLError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:\n")
	var lines []string
	for _, l := range strings.Split(msg, "\n") {
		l = strings.TrimSpace(l)
		if i := strings.Index(l, " into "); i > 0 {
			l = l[:i] + " (wrong type for this key)"
		}
		lines = append(lines, l)
	}
	return errors.New(strings.Join(lines, "; "))
}

// Explicit reports whether the file set the dotted key.
func (c Config) Explicit(key string) bool { return c.explicit[key] }

// Validate checks every section; each error names its key.
func (c Config) Validate() error {
	var errs []error
	add := func(key string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
		}
	}
	if c.DataDir == "" {
		add("data_dir", errors.New("must not be empty"))
	}
	if c.MemoryLimitMB < MemoryLimitNone || (c.MemoryLimitMB > 0 && c.MemoryLimitMB < 32) {
		add("memory_limit_mb", fmt.Errorf("%d: want 0 (automatic), -1 (none) or at least 32", c.MemoryLimitMB))
	}
	if c.MaxProcs < 0 || c.MaxProcs > maxMaxProcs {
		add("max_procs", fmt.Errorf("%d: want 0 (every core) or 1 to %d", c.MaxProcs, maxMaxProcs))
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add("log.level", fmt.Errorf("%q is not one of debug, info, warn, error", c.Log.Level))
	}
	switch c.Log.Format {
	case "text", "json", "journal":
	default:
		add("log.format", fmt.Errorf("%q is not one of text, json, journal", c.Log.Format))
	}
	add("admin.listen", validHostPort(c.Admin.Listen, false))
	add("admin.metrics.listen", validHostPort(c.Admin.Metrics.Listen, true))
	if (c.Admin.Metrics.Username == "") != (c.Admin.Metrics.Password == "") {
		add("admin.metrics.username", errors.New("username and password go together"))
	}
	if t := c.Admin.Metrics.BearerToken; t != "" && (len(t) < 16 || strings.ContainsAny(t, " \t\r\n")) {
		add("admin.metrics.bearer_token", errors.New("use at least 16 characters and no spaces"))
	}
	if (c.Admin.TLSCert == "") != (c.Admin.TLSKey == "") {
		add("admin.tls_cert", errors.New("tls_cert and tls_key go together"))
	}
	if err := c.Admin.API.Validate(); err != nil {
		errs = append(errs, prefixed("admin.api", err)...)
	}
	if err := c.Admin.Web.Validate(); err != nil {
		errs = append(errs, prefixed("admin.web", err)...)
	}
	errs = append(errs, c.validateSections()...)
	return errors.Join(errs...)
}

// validHostPort accepts "host:port" with a numeric port; empty only when allowed.
func validHostPort(s string, emptyOK bool) error {
	if s == "" {
		if emptyOK {
			return nil
		}
		return errors.New("must not be empty")
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port", s)
	}
	if host != "" && net.ParseIP(host) == nil && host != "localhost" {
		return fmt.Errorf("%q: host must be an IP address or empty", s)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("%q: port must be 0-65535", s)
	}
	return nil
}

// validListenURL accepts scheme://host:port with one of the schemes.
func validListenURL(s string, schemes ...string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not scheme://host:port", s)
	}
	ok := false
	for _, sc := range schemes {
		ok = ok || u.Scheme == sc
	}
	if !ok {
		return fmt.Errorf("%q: scheme must be one of %s", s, strings.Join(schemes, ", "))
	}
	return validHostPort(u.Host, false)
}

// Masked returns the configuration as YAML with every secret replaced.
func (c Config) Masked() ([]byte, error) {
	m := c
	mask := func(s *string) {
		if *s != "" {
			*s = "********"
		}
	}
	mask(&m.Admin.InitialPassword)
	mask(&m.Admin.Metrics.BearerToken)
	mask(&m.Admin.Metrics.Password)
	maskSections(&m, mask)
	return yaml.Marshal(m)
}

// slogLevel maps the config level to slog's.
func slogLevel(s string) slog.Level {
	switch s {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// NewLogger builds the daemon's logger; lv lets SIGHUP change the level.
func NewLogger(w io.Writer, c LogConfig, lv *slog.LevelVar) *slog.Logger {
	lv.Set(slogLevel(c.Level))
	opts := &slog.HandlerOptions{Level: lv}
	switch c.Format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts))
	case "journal":
		// journald stamps every line itself; a second timestamp is noise.
		opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// changedKeys lists the top-level sections that differ, for the reload log.
func changedKeys(a, b Config) []string {
	var out []string
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	for i := range va.NumField() {
		f := va.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			out = append(out, strings.Split(f.Tag.Get("yaml"), ",")[0])
		}
	}
	sort.Strings(out)
	return out
}

// durationOK rejects negative durations.
func durationOK(d time.Duration) error {
	if d < 0 {
		return errors.New("must not be negative")
	}
	return nil
}
