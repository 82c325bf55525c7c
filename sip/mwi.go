package sip

import (
	"context"
	"fmt"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// Message-waiting (RFC 3842). A phone that SUBSCRIBEs to
// "Event: message-summary" for its own user is served by dialogEvents like
// a BLF key, with a simple-message-summary body. A phone that does not
// subscribe gets an unsolicited NOTIFY (out of dialog) on every change:
// Yealink documents both ("IP phones support both solicited and
// unsolicited MWI", Administrator's Guide for SIP-T2xP, Message Waiting
// Indicator), and Polycom subscribes only when msg.mwi.N.subscribe is set
// (SoundPoint IP Administrator Guide §4.6.3.5.1), showing unsolicited
// NOTIFYs otherwise.

// mwiUpdate is one mailbox's new counts, for the unsolicited sender.
type mwiUpdate struct {
	user       string
	newMsgs    int
	oldMsgs    int
	subscribed map[string]bool // sources with a subscription: told in-dialog
}

// messageSummary is the RFC 3842 §5.2 body.
func messageSummary(account string, newMsgs, oldMsgs int) []byte {
	waiting := "no"
	if newMsgs > 0 {
		waiting = "yes"
	}
	return fmt.Appendf(nil, "Messages-Waiting: %s\r\nMessage-Account: %s\r\nVoice-Message: %d/%d (0/0)\r\n",
		waiting, account, newMsgs, oldMsgs)
}

// MessageWaiting tells a mailbox's new counts to its phones: in-dialog to
// the subscriptions, unsolicited to the user's other registered phones.
// It never blocks: a full queue drops (counted) and the next change
// carries the full state again. Without the proxy it does nothing.
func (s *Server) MessageWaiting(_ context.Context, user string, newMsgs, oldMsgs int) {
	p := s.proxy.Load()
	if p == nil || p.mailboxes == nil {
		return
	}
	p.dlg.messageWaiting(user, newMsgs, oldMsgs)
}

func (d *dialogEvents) messageWaiting(user string, newMsgs, oldMsgs int) {
	var jobs []notifyJob
	subscribed := map[string]bool{}
	d.mu.Lock()
	if subs := d.byUser[watchKey(mwiPackage, user)]; len(subs) > 0 {
		d.mwi[user] = [2]int{newMsgs, oldMsgs}
		for _, sub := range subs {
			subscribed[sub.dest] = true
			jobs = append(jobs, d.notifyLocked(sub, false, ""))
		}
	}
	d.mu.Unlock()
	for _, j := range jobs {
		d.queue(j)
	}
	select {
	case d.unsol <- mwiUpdate{user: user, newMsgs: newMsgs, oldMsgs: oldMsgs, subscribed: subscribed}:
	default:
		d.m.mwi.WithLabelValues("dropped").Inc()
	}
}

// sendUnsolicited sends the unsolicited NOTIFYs, one at a time.
func (d *dialogEvents) sendUnsolicited(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case u := <-d.unsol:
			for _, b := range d.p.s.Lookup(ctx, u.user) {
				if u.subscribed[b.Target()] || u.subscribed[b.Source] {
					continue
				}
				err := d.unsolicited(ctx, b, u)
				switch {
				case err == nil:
					d.m.mwi.WithLabelValues("sent").Inc()
				case ctx.Err() != nil:
					return
				default:
					d.m.mwi.WithLabelValues("failed").Inc()
					d.log.Debug("message-waiting NOTIFY failed", "aor", b.AOR, "err", err)
				}
			}
		}
	}
}

func (d *dialogEvents) unsolicited(ctx context.Context, b Binding, u mwiUpdate) error {
	req, err := d.p.s.notifyRequest(b, mwiPackage)
	if err != nil {
		return err
	}
	account := "sip:" + u.user + "@" + d.p.s.domains[0]
	if i := strings.LastIndexByte(b.AOR, '@'); i >= 0 {
		account = "sip:" + u.user + b.AOR[i:]
	}
	// Every NOTIFY carries Subscription-State (RFC 6665 §8.2.3), and RFC
	// 3842 leaves unsolicited ones undefined. "terminated" tells a
	// conforming UA there is nothing to show, so the state is "active", as
	// Asterisk's res_pjsip_mwi sends its unsolicited MWI to Polycom,
	// Yealink and Cisco phones; the Cisco SPA9000 admin guide (Subscribing
	// to Voicemail Notification) accepts a NOTIFY outside any subscription.
	req.RemoveHeader("Subscription-State")
	req.AppendHeader(sip.NewHeader("Subscription-State", "active"))
	req.AppendHeader(sip.NewHeader("Content-Type", mwiType))
	req.SetBody(messageSummary(account, u.newMsgs, u.oldMsgs))
	cctx, cancel := context.WithTimeout(ctx, notifyTimeout)
	defer cancel()
	return d.p.s.sendNotify(cctx, b, "", req)
}
