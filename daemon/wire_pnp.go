package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"hotdesk/prov/files"
	"hotdesk/sip"
)

// bindPnP binds SIP plug-and-play discovery (sip.pnp) once provisioning
// is bound: the URL phones are sent to names its listener.
func (a *app) bindPnP() error {
	c := a.cfg.SIP.PnP
	if !c.Enabled {
		return nil
	}
	ls, err := sip.ListenPnP(c)
	if err != nil {
		return fmt.Errorf("sip.pnp: %w", err)
	}
	a.closers = append(a.closers, func() error { ls.Close(); return nil })
	a.addrs.SIPPnP = ls.Unicast.LocalAddr().String()
	p, err := sip.NewPnP(sip.PnPDeps{Logger: a.logger.With("room", "sip"), Registerer: a.reg, Now: time.Now,
		UserAgent:   a.cfg.SIP.UserAgent,
		Provisioner: pnpProvisioner{files: a.svc.files, url: pnpURL(a.cfg, a.addrs)}})
	if err != nil {
		return err
	}
	a.components = append(a.components, component{name: "sip-pnp", proto: "sip",
		serve: func(ctx context.Context) error { return p.Serve(ctx, ls) }})
	return nil
}

// pnpProvisioner enrols discovered phones with prov and names their URL.
type pnpProvisioner struct {
	files *files.Files
	url   func(sip.PnPDevice) string
}

func (p pnpProvisioner) PnPEnrol(ctx context.Context, d sip.PnPDevice) (string, error) {
	if p.files == nil {
		return "", errors.New("provisioning is not serving")
	}
	if _, err := p.files.EnrollDiscovered(ctx, d.MAC, d.UserAgent, d.Source); err != nil {
		if errors.Is(err, files.ErrDiscoveryRefused) {
			return "", fmt.Errorf("%w: %w", sip.ErrPnPDenied, err)
		}
		return "", err
	}
	return p.url(d), nil
}

// pnpURL returns the provisioning URL a discovered phone is sent:
// provisioning.base_url, else the bound HTTP listener (HTTPS when only
// that is bound) under path_prefix, a wildcard host replaced by the
// address of the interface plug-and-play serves. Every vendor gets the
// same root today; the per-vendor renderers can name their own here.
func pnpURL(cfg Config, a Addrs) func(sip.PnPDevice) string {
	base := provBaseURL(cfg, a, cfg.SIP.PnP.Interface)
	return func(sip.PnPDevice) string { return base }
}
