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
	return sip.Credential{Username: cr.Username, Password: cr.Password, HA1: cr.HA1, AORs: cr.AORs,
		Owner: sipOwner(cr.Owner()), Device: deviceKey(cr.DeviceID)}, nil
}

// sipOwner and provOwner convert the one owner shape between the rooms:
// the kinds are spelled alike on both sides.
func sipOwner(o prov.Owner) sip.Owner { return sip.Owner{Kind: sip.OwnerKind(o.Kind), ID: o.ID} }

func provOwner(o sip.Owner) prov.Owner { return prov.Owner{Kind: prov.OwnerKind(o.Kind), ID: o.ID} }

// deviceKey is a device ID as the registrar carries it on bindings.
func deviceKey(id int64) string {
	if id == 0 {
		return ""
	}
	return strconv.FormatInt(id, 10)
}

func (a sipCredentials) CanonicalUser(_ context.Context, userPart string) (string, bool) {
	return a.c.Canonical(userPart)
}

// sipBindings persists the registrar's bindings in prov's store.
// On a cluster each row names the node holding it: a node reloads only its
// own, and lets go only of those it still holds.
type sipBindings struct {
	st      prov.Store
	cluster prov.ClusterStore // nil on one node
	node    string
}

func (a sipBindings) LoadBindings(ctx context.Context) ([]sip.Binding, error) {
	var bs []prov.Binding
	var err error
	if a.cluster != nil {
		bs, err = a.cluster.HeldBindings(ctx, a.node)
	} else {
		bs, err = a.st.ListBindings(ctx)
	}
	if err != nil {
		return nil, err
	}
	out := make([]sip.Binding, 0, len(bs))
	for _, b := range bs {
		q := ""
		if b.Q > 0 {
			q = strconv.FormatFloat(b.Q, 'f', -1, 64)
		}
		out = append(out, sip.Binding{AOR: b.AOR, Contact: b.Contact, Instance: b.Instance, RegID: b.RegID,
			CallID: b.CallID, CSeq: b.CSeq, Expires: b.Expires, Q: q, Path: b.Path, Source: b.Source,
			Transport: b.Transport, UserAgent: b.UserAgent, Owner: sipOwner(b.Owner),
			Local: b.Node, Updated: b.UpdatedAt, AuthUser: b.AuthUser, Device: deviceKey(b.DeviceID)})
	}
	return out, nil
}

func (a sipBindings) SaveBindings(ctx context.Context, ups []sip.Binding, dels []sip.BindingKey) error {
	holder := ""
	if a.cluster != nil {
		holder = a.node
	}
	pu := make([]prov.Binding, 0, len(ups))
	for _, b := range ups {
		pb := provBinding(b)
		pb.Holder = holder
		pu = append(pu, pb)
	}
	pd := make([]prov.BindingKey, 0, len(dels))
	for _, d := range dels {
		pd = append(pd, prov.BindingKey{AOR: d.AOR, Contact: d.Contact, Holder: holder})
	}
	return a.st.SaveBindings(ctx, pu, pd)
}

func provBinding(b sip.Binding) prov.Binding {
	q, _ := strconv.ParseFloat(b.Q, 64)
	dev, _ := strconv.ParseInt(b.Device, 10, 64)
	return prov.Binding{AOR: b.AOR, Contact: b.Contact, Instance: b.Instance, RegID: b.RegID, CallID: b.CallID,
		CSeq: b.CSeq, Expires: b.Expires, Q: q, Path: b.Path, Source: b.Source, Transport: b.Transport,
		UserAgent: b.UserAgent, Owner: provOwner(b.Owner), Node: b.Local, UpdatedAt: b.Updated,
		AuthUser: b.AuthUser, DeviceID: dev, LocalHost: b.LocalHost}
}

// sipBinding is the inverse of provBinding.
func sipBinding(b prov.Binding) sip.Binding {
	q := ""
	if b.Q > 0 {
		q = strconv.FormatFloat(b.Q, 'f', -1, 64)
	}
	return sip.Binding{AOR: b.AOR, Contact: b.Contact, Instance: b.Instance, RegID: b.RegID,
		CallID: b.CallID, CSeq: b.CSeq, Expires: b.Expires, Q: q, Path: b.Path, Source: b.Source,
		Transport: b.Transport, UserAgent: b.UserAgent, Owner: sipOwner(b.Owner),
		Local: b.Node, LocalHost: b.LocalHost, Updated: b.UpdatedAt, AuthUser: b.AuthUser, Device: deviceKey(b.DeviceID)}
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

func (r *registrar) Unbind(ctx context.Context, owner prov.Owner) ([]prov.Binding, error) {
	if owner.IsZero() {
		return nil, fmt.Errorf("unbind: no owner")
	}
	bs, err := r.srv.Unbind(ctx, sipOwner(owner))
	out := make([]prov.Binding, 0, len(bs))
	for _, b := range bs {
		out = append(out, provBinding(b))
	}
	return out, err
}

func (r *registrar) DeviceBindings(_ context.Context, deviceID int64) []prov.Binding {
	bs := r.srv.DeviceBindings(deviceKey(deviceID))
	out := make([]prov.Binding, 0, len(bs))
	for _, b := range bs {
		out = append(out, provBinding(b))
	}
	return out
}

// CheckSync sends the re-sync NOTIFY to one contact of a phone. The send
// runs in the background: a logout must not wait for a phone's 200.
func (r *registrar) CheckSync(_ context.Context, pb prov.Binding, password string, event string) error {
	select {
	case r.notifySlots <- struct{}{}:
	default:
		return fmt.Errorf("check-sync to %s dropped: too many in flight", pb.Source)
	}
	b := sipBinding(pb)
	go func() {
		defer func() { <-r.notifySlots }()
		ctx, cancel := context.WithTimeout(r.ctx, 40*time.Second)
		defer cancel()
		if err := r.srv.NotifyResync(ctx, b, password, event); err != nil {
			r.logger.Warn("check-sync failed", "component", "registrar", "contact", b.Contact, "err", err)
		}
	}()
	return nil
}
