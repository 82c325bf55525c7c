package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"hotdesk/prov"
	"hotdesk/sip"
)

// sipCredentials serves the registrar from prov's in-memory credential index.
type sipCredentials struct{ c *prov.Credentials }

func (a sipCredentials) Credential(_ context.Context, username string) (sip.Credential, error) {
	cr, ok := a.c.Lookup(username)
	if !ok {
		return sip.Credential{}, fmt.Errorf("%w: %s", sip.ErrUnknownUser, username)
	}
	return sip.Credential{Username: cr.Username, Password: cr.Password, AORs: cr.AORs,
		Owner: sip.Owner{Kind: sip.OwnerKind(cr.Kind), ID: cr.OwnerID}}, nil
}

func (a sipCredentials) CanonicalUser(_ context.Context, userPart string) (string, bool) {
	return a.c.Canonical(userPart)
}

// sipBindings persists the registrar's bindings in prov's store.
type sipBindings struct{ st prov.Store }

func (a sipBindings) LoadBindings(ctx context.Context) ([]sip.Binding, error) {
	bs, err := a.st.ListBindings(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]sip.Binding, 0, len(bs))
	for _, b := range bs {
		kind, id, _ := prov.ParseOwner(b.Owner)
		q := ""
		if b.Q > 0 {
			q = strconv.FormatFloat(b.Q, 'f', -1, 64)
		}
		out = append(out, sip.Binding{AOR: b.AOR, Contact: b.Contact, Instance: b.Instance, RegID: b.RegID,
			CallID: b.CallID, CSeq: b.CSeq, Expires: b.Expires, Q: q, Path: b.Path, Source: b.Source,
			Transport: b.Transport, UserAgent: b.UserAgent, Owner: sip.Owner{Kind: sip.OwnerKind(kind), ID: id},
			Local: b.Node, Updated: b.UpdatedAt, AuthUser: b.AuthUser})
	}
	return out, nil
}

func (a sipBindings) SaveBindings(ctx context.Context, ups []sip.Binding, dels []sip.BindingKey) error {
	pu := make([]prov.Binding, 0, len(ups))
	for _, b := range ups {
		pu = append(pu, provBinding(b))
	}
	pd := make([]prov.BindingKey, 0, len(dels))
	for _, d := range dels {
		pd = append(pd, prov.BindingKey{AOR: d.AOR, Contact: d.Contact})
	}
	return a.st.SaveBindings(ctx, pu, pd)
}

func provBinding(b sip.Binding) prov.Binding {
	q, _ := strconv.ParseFloat(b.Q, 64)
	return prov.Binding{AOR: b.AOR, Contact: b.Contact, Instance: b.Instance, RegID: b.RegID, CallID: b.CallID,
		CSeq: b.CSeq, Expires: b.Expires, Q: q, Path: b.Path, Source: b.Source, Transport: b.Transport,
		UserAgent: b.UserAgent, Owner: string(b.Owner.Kind) + ":" + b.Owner.ID, Node: b.Local, UpdatedAt: b.Updated,
		AuthUser: b.AuthUser}
}

// registrar adapts sip.Server to prov.Registrar.
type registrar struct {
	srv    *sip.Server
	domain string
	logger *slog.Logger
	// notifySlots bounds concurrent check-sync NOTIFYs; each may retry for
	// up to 32 s to an unresponsive phone.
	notifySlots chan struct{}
	ctx         context.Context
}

func (r *registrar) Unbind(ctx context.Context, owner string) (int, error) {
	kind, id, ok := prov.ParseOwner(owner)
	if !ok {
		return 0, fmt.Errorf("unbind: bad owner %q", owner)
	}
	bs, err := r.srv.Unbind(ctx, sip.Owner{Kind: sip.OwnerKind(kind), ID: id})
	return len(bs), err
}

// CheckSync sends NOTIFY check-sync to the device account's contacts. The
// send runs in the background: a logout must not wait for a phone's 200.
func (r *registrar) CheckSync(_ context.Context, d prov.Device, reboot bool) error {
	if d.SIPUser == "" {
		return nil
	}
	bs := r.srv.Lookup(r.ctx, "sip:"+d.SIPUser+"@"+r.domain)
	if len(bs) == 0 {
		return fmt.Errorf("device %s is not registered", d.MAC)
	}
	for _, b := range bs {
		select {
		case r.notifySlots <- struct{}{}:
		default:
			return fmt.Errorf("check-sync to %s dropped: too many in flight", d.MAC)
		}
		go func() {
			defer func() { <-r.notifySlots }()
			ctx, cancel := context.WithTimeout(r.ctx, 40*time.Second)
			defer cancel()
			if err := r.srv.NotifyCheckSync(ctx, b, reboot); err != nil {
				r.logger.Warn("check-sync failed", "mac", d.MAC, "err", err)
			}
		}()
	}
	return nil
}
