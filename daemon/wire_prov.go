package daemon

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"hotdesk/prov"
	"hotdesk/prov/files"
	"hotdesk/prov/provhttp"
	"hotdesk/prov/render"
	"hotdesk/tftp"
)

// bindProvisioning binds the HTTP, HTTPS and TFTP listeners and serves the
// one provisioning namespace on all of them.
func (a *app) bindProvisioning(ctx context.Context) error {
	p := a.cfg.Provisioning
	logger := a.logger.With("room", "prov")
	var httpLn, httpsLn net.Listener
	var err error
	if p.HTTPListen != "" {
		if httpLn, err = net.Listen("tcp", p.HTTPListen); err != nil {
			return fmt.Errorf("provisioning.http_listen: %w", err)
		}
		a.closers = append(a.closers, httpLn.Close)
		a.addrs.HTTP = httpLn.Addr().String()
	}
	if p.HTTPSListen != "" {
		if httpsLn, err = net.Listen("tcp", p.HTTPSListen); err != nil {
			return fmt.Errorf("provisioning.https_listen: %w", err)
		}
		a.closers = append(a.closers, httpsLn.Close)
		a.addrs.HTTPS = httpsLn.Addr().String()
	}
	fc := p.FilesConfig()
	// Derived URLs must name the ports actually bound (":0" in tests).
	if httpLn != nil {
		fc.HTTPPort = httpLn.Addr().(*net.TCPAddr).Port
	}
	if httpsLn != nil {
		fc.HTTPSPort = httpsLn.Addr().(*net.TCPAddr).Port
	}
	rc := p.RenderConfig(a.sipPort())
	rc.Nodes, rc.SRVDomain = a.cfg.Cluster.Nodes, a.cfg.Cluster.SRVDomain
	rend, err := render.New(rc, logger)
	if err != nil {
		return fmt.Errorf("provisioning.templates_dir: %w", err)
	}
	// prov's services are built here: the files need the renderer, which
	// names the SIP and provisioning ports just bound.
	if err := a.buildServices(ctx, fc, rend); err != nil {
		return err
	}
	files := a.svc.files
	h, err := provhttp.New(p.Config, provhttp.Deps{Files: files, Accounts: a.store,
		Logins: nativeLogins{a.svc.sessions}, Logger: logger, Now: time.Now,
		Pages: &provhttp.PhonePages{Store: a.store, Sessions: a.svc.sessions, Directory: a.svc.directory, Logger: logger,
			Now: time.Now}})
	if err != nil {
		return err
	}
	// The phones' listeners are fasthttp's (issue 17: net/http's own cost
	// per request kept the daemon below nginx); provhttp sets their timeouts.
	if httpLn != nil {
		a.addFastHTTP("provisioning-http", httpLn, provhttp.NewFastServer(h, logger), nil)
	}
	if httpsLn != nil {
		tlsCfg, err := provhttp.TLSConfig(p.Config, a.cfg.DataDir, []string{lanAddress(a.cfg.DHCP.Interface)}, time.Now)
		if err != nil {
			return fmt.Errorf("provisioning.tls_cert: %w", err)
		}
		a.addFastHTTP("provisioning-https", httpsLn, provhttp.NewFastServer(h, logger), tlsCfg)
	}
	if p.TFTPListen != "" {
		return a.bindTFTP(files, logger)
	}
	return nil
}

// addFastHTTP is addHTTP for a fasthttp server: shut down within the
// daemon's shutdown deadline, its keep-alive connections closed.
func (a *app) addFastHTTP(name string, ln net.Listener, srv *fasthttp.Server, tlsCfg *tls.Config) {
	ln, proto := withTLS(ln, tlsCfg)
	a.components = append(a.components, component{
		name: name, proto: proto,
		serve: func(context.Context) error {
			// Serve returns nil once shut down.
			return srv.Serve(ln)
		},
		shutdown: func(ctx context.Context) {
			if err := srv.ShutdownWithContext(ctx); err != nil {
				a.logger.Warn("http shutdown", "name", name, "err", err)
			}
		},
	})
}

func (a *app) bindTFTP(files *files.Files, logger *slog.Logger) error {
	conn, err := net.ListenPacket("udp", a.cfg.Provisioning.TFTPListen)
	if err != nil {
		return fmt.Errorf("provisioning.tftp_listen: %w", err)
	}
	a.closers = append(a.closers, conn.Close)
	a.addrs.TFTP = conn.LocalAddr().String()
	srv, err := tftp.New(a.cfg.Provisioning.TFTP, tftp.Deps{Logger: logger.With("proto", "tftp"), Registerer: a.reg,
		FS: tftpFiles{files: files, local: conn.LocalAddr()}, Now: time.Now})
	if err != nil {
		return err
	}
	a.components = append(a.components, component{name: "provisioning-tftp", proto: "tftp",
		serve: func(ctx context.Context) error { return srv.Serve(ctx, conn) }})
	return nil
}

// sipPort is the port rendered into phones' lines: the first UDP listener's.
func (a *app) sipPort() int {
	for _, s := range append(append([]string{}, a.addrs.SIPUDP...), a.addrs.SIPTCP...) {
		if _, p, err := net.SplitHostPort(s); err == nil {
			n, _ := strconv.Atoi(p)
			return n
		}
	}
	return 5060
}

// nativeLogins is the native Polycom login door: provhttp has verified the
// typed user ID and password as HTTP digest credentials.
type nativeLogins struct{ s *prov.Sessions }

func (n nativeLogins) NativeLogin(ctx context.Context, mac, username, remote string) (prov.Session, error) {
	return n.s.Login(ctx, prov.LoginRequest{MAC: mac, Username: username, Door: prov.DoorNative,
		Verified: true, Remote: remote, Actor: prov.UserActor(username, remote)})
}

func (n nativeLogins) NativeGuard(username, remote string) (func(bool), bool) {
	return n.s.GuardUser(username, remote)
}

func (n nativeLogins) ExtensionMobility(ctx context.Context, mac, username, token, remote string) (prov.EMResult, error) {
	return n.s.ExtensionMobility(ctx, mac, username, token, remote)
}

// tftpFiles serves the provisioning namespace to the TFTP server.
type tftpFiles struct {
	files *files.Files
	local net.Addr
}

func (t tftpFiles) request(name string, remote netip.AddrPort) files.Request {
	req := files.Request{Proto: files.ProtoTFTP, Path: name, Remote: remote}
	if ua, ok := t.local.(*net.UDPAddr); ok {
		req.Local = ua.AddrPort()
	}
	return req
}

func (t tftpFiles) Open(ctx context.Context, name string, remote netip.AddrPort) (tftp.File, error) {
	c, err := t.files.Read(ctx, t.request(name, remote))
	if err != nil {
		return nil, tftpError(err)
	}
	return tftpFile{c}, nil
}

func (t tftpFiles) Create(ctx context.Context, name string, remote netip.AddrPort) (tftp.Upload, error) {
	req := t.request(name, remote)
	if err := t.files.CheckUpload(ctx, req); err != nil {
		return nil, tftpError(err)
	}
	return &tftpUpload{ctx: ctx, files: t.files, req: req}, nil
}

// tftpError maps prov's outcomes to the TFTP room's sentinels, which give
// the same "File not found" for a missing file and a forbidden one.
func tftpError(err error) error {
	switch {
	case errors.Is(err, prov.ErrNotFound), errors.Is(err, files.ErrBadName):
		return fmt.Errorf("%w: %v", tftp.ErrNotFound, err)
	case errors.Is(err, prov.ErrAuth), errors.Is(err, prov.ErrDenied):
		return fmt.Errorf("%w: %v", tftp.ErrForbidden, err)
	case errors.Is(err, prov.ErrInvalid):
		return fmt.Errorf("%w: %v", tftp.ErrForbidden, err)
	}
	return err
}

type tftpFile struct{ c *files.Content }

func (f tftpFile) Read(p []byte) (int, error) { return f.c.Body.Read(p) }
func (f tftpFile) Close() error               { return f.c.Close() }
func (f tftpFile) Size() int64                { return f.c.Size }

// tftpUpload buffers a phone's upload and hands it to prov whole, so an
// aborted transfer stores nothing.
type tftpUpload struct {
	ctx   context.Context
	files *files.Files
	req   files.Request
	buf   bytes.Buffer
}

func (u *tftpUpload) Write(p []byte) (int, error) { return u.buf.Write(p) }
func (u *tftpUpload) Abort()                      { u.buf.Reset() }
func (u *tftpUpload) Commit() error {
	if err := u.files.Write(u.ctx, u.req, io.NopCloser(&u.buf)); err != nil {
		return tftpError(err)
	}
	return nil
}
