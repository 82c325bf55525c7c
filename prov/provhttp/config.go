package provhttp

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"hotdesk/prov/files"
	"hotdesk/prov/render"
)

// Config is the daemon's `provisioning:` section.
type Config struct {
	HTTPListen  string `yaml:"http_listen"`
	HTTPSListen string `yaml:"https_listen"`
	TLSCert     string `yaml:"tls_cert"`
	TLSKey      string `yaml:"tls_key"`
	TFTPListen  string `yaml:"tftp_listen"`
	// BaseURL is what option 66 announces and phones are moved to; "" =
	// derived from the local address a request arrived at.
	BaseURL    string `yaml:"base_url"`
	PathPrefix string `yaml:"path_prefix"`
	StaticDir  string `yaml:"static_dir"`
	// TemplatesDir holds admin template overrides (<dir>/polycom/*.tmpl).
	TemplatesDir string `yaml:"templates_dir"`
	// Enroll is auto, approve or deny for unknown devices.
	Enroll string `yaml:"enroll"`
	// EnrollPerSource unknown devices per minute from one address are
	// enrolled under auto; more wait for approval (-1: no limit).
	EnrollPerSource int  `yaml:"enroll_per_source_per_minute"`
	TFTPSecrets     bool `yaml:"tftp_secrets"`
	// SecretsHTTPSOnly withholds every password from plain HTTP: phones
	// get them (and the user's lines) over https_listen only.
	SecretsHTTPSOnly bool  `yaml:"secrets_https_only"`
	MaxUploadBytes   int64 `yaml:"max_upload_bytes"`
	// UploadQuotaBytes bounds what one device's (or user's) kept uploads
	// take; UploadTotalBytes all of them, so uploads cannot fill the disk.
	UploadQuotaBytes int64 `yaml:"upload_quota_bytes"`
	UploadTotalBytes int64 `yaml:"upload_total_bytes"`
	UploadVersions   int   `yaml:"upload_versions"`
	// NonceTTL is how long a digest nonce is accepted.
	NonceTTL time.Duration `yaml:"nonce_ttl"`
	// FailBurst failures (401/404) per source address are allowed, then one
	// per FailInterval; beyond that the source gets 429.
	FailBurst    int           `yaml:"fail_burst"`
	FailInterval time.Duration `yaml:"fail_interval"`
	// FirmwareURLs is the firmware each vendor's phones are told to run,
	// by vendor (render.FirmwareVendors); per vendor because an image is
	// one vendor's, and each vendor's files name it in their own way.
	FirmwareURLs map[string]string `yaml:"firmware_urls"`
}

// DefaultConfig is plain HTTP on :80 and TFTP on :69 at the root.
func DefaultConfig() Config {
	return Config{HTTPListen: ":80", TFTPListen: ":69", Enroll: files.EnrollAuto, EnrollPerSource: 30,
		MaxUploadBytes: 1 << 20, UploadQuotaBytes: 8 << 20, UploadTotalBytes: 512 << 20, UploadVersions: 5,
		NonceTTL: 5 * time.Minute, FailBurst: 30, FailInterval: 2 * time.Second}
}

// Validate names the offending key relative to the section.
func (c Config) Validate() error {
	var errs []error
	for k, v := range map[string]string{"http_listen": c.HTTPListen, "https_listen": c.HTTPSListen, "tftp_listen": c.TFTPListen} {
		if v == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", k, err))
		}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("tls_cert: tls_cert and tls_key go together"))
	}
	if c.PathPrefix != "" && (!strings.HasPrefix(c.PathPrefix, "/") || strings.HasSuffix(c.PathPrefix, "/")) {
		errs = append(errs, errors.New("path_prefix: must start with / and not end with /"))
	}
	if c.BaseURL != "" && !strings.HasPrefix(c.BaseURL, "http://") && !strings.HasPrefix(c.BaseURL, "https://") {
		errs = append(errs, errors.New("base_url: must be an http:// or https:// URL"))
	}
	switch c.Enroll {
	case files.EnrollAuto, files.EnrollApprove, files.EnrollDeny:
	default:
		errs = append(errs, fmt.Errorf("enroll: %q is not auto, approve or deny", c.Enroll))
	}
	if c.EnrollPerSource == 0 || c.EnrollPerSource < -1 {
		errs = append(errs, errors.New("enroll_per_source_per_minute: must be ≥ 1, or -1 for no limit"))
	}
	if c.MaxUploadBytes <= 0 || c.MaxUploadBytes > 64<<20 {
		errs = append(errs, errors.New("max_upload_bytes: must be 1..67108864"))
	}
	if c.UploadQuotaBytes < c.MaxUploadBytes {
		errs = append(errs, errors.New("upload_quota_bytes: must be at least max_upload_bytes"))
	}
	if c.UploadTotalBytes < c.UploadQuotaBytes {
		errs = append(errs, errors.New("upload_total_bytes: must be at least upload_quota_bytes"))
	}
	if c.SecretsHTTPSOnly && c.HTTPSListen == "" {
		errs = append(errs, errors.New("secrets_https_only: needs https_listen"))
	}
	if c.UploadVersions < 1 || c.UploadVersions > 1000 {
		errs = append(errs, errors.New("upload_versions: must be 1..1000"))
	}
	if c.NonceTTL < 10*time.Second {
		errs = append(errs, errors.New("nonce_ttl: must be at least 10s"))
	}
	if c.FailBurst < 1 || c.FailInterval <= 0 {
		errs = append(errs, errors.New("fail_burst: fail_burst ≥ 1 and fail_interval > 0 required"))
	}
	errs = append(errs, validFirmwareURLs(c.FirmwareURLs)...)
	return errors.Join(errs...)
}

// validFirmwareURLs: a known vendor each, an absolute http, https or tftp
// URL (what every vendor's firmware parameter takes) without credentials
// (they would be rendered into every phone's file).
func validFirmwareURLs(m map[string]string) []error {
	var errs []error
	vendors := render.FirmwareVendors()
	for _, vendor := range slices.Sorted(maps.Keys(m)) {
		key := "firmware_urls." + vendor
		if !slices.Contains(vendors, vendor) {
			errs = append(errs, fmt.Errorf("%s: unknown vendor, want one of %s (Polycom's firmware is the static directory's sip.ld)",
				key, strings.Join(vendors, ", ")))
			continue
		}
		u, err := url.Parse(m[vendor])
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
		case u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "tftp" || u.Host == "":
			errs = append(errs, fmt.Errorf("%s: %q is not an absolute http://, https:// or tftp:// URL", key, m[vendor]))
		case u.User != nil:
			errs = append(errs, fmt.Errorf("%s: no credentials in the URL: every phone's file would carry them", key))
		}
	}
	return errs
}

func port(listen string) int {
	_, p, err := net.SplitHostPort(listen)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}

// FilesConfig is the part of the section files.New takes.
func (c Config) FilesConfig() files.Config {
	fc := files.Config{BaseURL: c.BaseURL, PathPrefix: c.PathPrefix, HTTPPort: port(c.HTTPListen),
		StaticDir: c.StaticDir, Enroll: c.Enroll, EnrollPerSource: c.EnrollPerSource, TFTPSecrets: c.TFTPSecrets,
		SecretsHTTPSOnly: c.SecretsHTTPSOnly, MaxUploadBytes: c.MaxUploadBytes, UploadQuota: c.UploadQuotaBytes,
		UploadTotal: c.UploadTotalBytes, UploadVersions: c.UploadVersions}
	if c.HTTPSListen != "" {
		fc.HTTPSPort = port(c.HTTPSListen)
	}
	return fc
}

// RenderConfig is the part of the section render.New takes; sipPort comes
// from the SIP section.
func (c Config) RenderConfig(sipPort int) render.Config {
	return render.Config{TemplatesDir: c.TemplatesDir, SIPPort: sipPort, FirmwareURLs: c.FirmwareURLs}
}
