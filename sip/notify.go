package sip

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// ErrNotifyRejected is returned when a phone answers NOTIFY with a non-2xx.
var ErrNotifyRejected = errors.New("sip: notify rejected")

// NotifyCheckSync sends an out-of-dialog NOTIFY with Event: check-sync
// (";reboot=true" when reboot is set) to a binding's contact, at
// Binding.Target over its transport and, for UDP, from the listener that
// received its REGISTER (phones validate the source). A phone that
// challenges it (Polycom's requestValidation) is answered with the
// binding's digest username and password; password "" asks Credentials,
// which no longer knows a credential revoked by a logout, so a logout
// passes the session's password here: it answers that one challenge and
// authenticates nothing else. Retransmissions follow the RFC 3261 timers
// of sipgo's client transaction; it gives up after Timer F (32 s) or when
// ctx ends.
func (s *Server) NotifyCheckSync(ctx context.Context, b Binding, password string, reboot bool) error {
	ev := "check-sync"
	if reboot {
		ev += ";reboot=true"
	}
	return s.NotifyResync(ctx, b, password, ev)
}

// NotifyResync is NotifyCheckSync with the Event header the phone's vendor
// re-provisions on: "check-sync;reboot=false" (Yealink, Snom), "resync"
// (Cisco MPP), ….
func (s *Server) NotifyResync(ctx context.Context, b Binding, password, event string) error {
	err := s.notify(ctx, b, password, event)
	result := "ok"
	switch {
	case errors.Is(err, ErrNotifyRejected):
		result = "rejected"
	case err != nil:
		result = "failed"
	}
	s.m.notify.WithLabelValues(result).Inc()
	return err
}

func (s *Server) notify(ctx context.Context, b Binding, password, event string) error {
	req, err := s.notifyRequest(b, event)
	if err != nil {
		return err
	}
	return s.sendNotify(ctx, b, password, req)
}

// sendNotify sends an out-of-dialog NOTIFY to a binding and answers its
// digest challenge with the binding's credentials.
func (s *Server) sendNotify(ctx context.Context, b Binding, password string, req *sip.Request) error {
	transport := req.Transport()
	ctx, cancel := context.WithTimeout(ctx, 64*500*time.Millisecond)
	defer cancel()
	res, err := s.Client.Do(ctx, req)
	if err != nil {
		return fmt.Errorf("notify %s via %s: %w", transport, req.Destination(), err)
	}
	if (res.StatusCode == 401 || res.StatusCode == 407) && b.AuthUser != "" {
		// Phones that validate requests by digest (Polycom requestValidation)
		// challenge us with the credentials of the line the NOTIFY is
		// addressed to.
		if password == "" {
			if cred, err := s.creds.Credential(ctx, b.AuthUser); err == nil {
				password = cred.Password
			}
		}
		if password != "" {
			res, err = s.Client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: b.AuthUser, Password: password})
			if err != nil {
				return fmt.Errorf("notify %s via %s with digest: %w", transport, req.Destination(), err)
			}
		}
	}
	if !res.IsSuccess() {
		return fmt.Errorf("%w: %d %s", ErrNotifyRejected, res.StatusCode, stripCRLF(res.Reason))
	}
	return nil
}

// notifyRequest builds the out-of-dialog NOTIFY for a binding.
func (s *Server) notifyRequest(b Binding, event string) (*sip.Request, error) {
	var uri sip.Uri
	if err := sip.ParseUri(b.Contact, &uri); err != nil {
		return nil, fmt.Errorf("notify: contact %q: %w", b.Contact, err)
	}
	transport := strings.ToUpper(b.Transport)
	if transport == "" {
		transport = "UDP"
	}
	req := sip.NewRequest(sip.NOTIFY, uri)
	req.SetTransport(transport)
	if t := b.Target(); t != "" {
		req.SetDestination(t)
	}
	local, hasLocal := splitAddr(b.Local)
	if transport == "UDP" && hasLocal {
		req.Laddr = local
	}
	via := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: transport,
		Params: sip.NewParams()}
	if hasLocal {
		via.Host, via.Port = local.IP.String(), local.Port
		if local.IP.IsUnspecified() && b.LocalHost != "" {
			via.Host = b.LocalHost
		}
	}
	via.Params.Add("branch", sip.GenerateBranchN(16))
	via.Params.Add("rport", "")
	req.AppendHeader(via)
	domain := s.domains[0]
	if i := strings.LastIndexByte(b.AOR, '@'); i >= 0 {
		domain = b.AOR[i+1:]
	}
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "hotdesk", Host: domain}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(from)
	to := &sip.ToHeader{Address: sip.Uri{Scheme: "sip", Host: domain}, Params: sip.NewParams()}
	if i := strings.IndexByte(b.AOR, ':'); i >= 0 {
		if j := strings.LastIndexByte(b.AOR, '@'); j > i {
			to.Address.User = b.AOR[i+1 : j]
		}
	}
	req.AppendHeader(to)
	if event == "" || strings.ContainsAny(event, "\r\n") {
		event = "check-sync"
	}
	req.AppendHeader(sip.NewHeader("Event", event))
	req.AppendHeader(sip.NewHeader("Subscription-State", "terminated"))
	if hasLocal && !local.IP.IsUnspecified() {
		req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "hotdesk",
			Host: local.IP.String(), Port: local.Port}})
	}
	return req, nil
}
